// counter_list.hpp: the readers of a daemon's counter list. A daemon writes
// each of its counter families once, in one function template that calls
//
//   out.one(key, family, type, help, value)
//   out.by(key_format, family, type, help, label, samples)
//
// on a reader: CounterJson (the control socket's flat JSON object: `key`, or
// `key_format` with "{}" replaced by each label value) or CounterMetrics
// (Prometheus families PREFIX_family, a sample per label value). An empty
// key or key format leaves the family out of JSON; an empty family leaves
// it out of Prometheus. Not thread-safe (one reader per rendering).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_writer.hpp"
#include "common/metrics_http.hpp"

namespace unit::common {

// A labelled family's samples: (label value, value), in order.
using LabelledSamples = std::vector<std::pair<std::string, double>>;

class CounterJson {
public:
    explicit CounterJson(JsonObject& object) : object_(object) {}
    void one(std::string_view key, std::string_view family, MetricsText::Type type, std::string_view help,
             double value);
    void by(std::string_view key_format, std::string_view family, MetricsText::Type type, std::string_view help,
            std::string_view label, const LabelledSamples& samples);

private:
    JsonObject& object_;
};

class CounterMetrics {
public:
    CounterMetrics(MetricsText& text, std::string_view prefix) : text_(text), prefix_(prefix) {}
    void one(std::string_view key, std::string_view family, MetricsText::Type type, std::string_view help,
             double value);
    void by(std::string_view key_format, std::string_view family, MetricsText::Type type, std::string_view help,
            std::string_view label, const LabelledSamples& samples);

private:
    std::string name(std::string_view family) const;

    MetricsText& text_;
    std::string prefix_;
};

}  // namespace unit::common
