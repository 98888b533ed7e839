#include "common/counter_list.hpp"

#include <fmt/format.h>

namespace unit::common {

void CounterJson::one(std::string_view key, std::string_view, MetricsText::Type, std::string_view, double value) {
    if (!key.empty()) object_.number(key, static_cast<std::int64_t>(value));
}

void CounterJson::by(std::string_view key_format, std::string_view, MetricsText::Type, std::string_view,
                     std::string_view, const LabelledSamples& samples) {
    if (key_format.empty()) return;
    for (const auto& [label_value, value] : samples)
        object_.number(fmt::format(fmt::runtime(key_format), label_value), static_cast<std::int64_t>(value));
}

std::string CounterMetrics::name(std::string_view family) const { return fmt::format("{}_{}", prefix_, family); }

void CounterMetrics::one(std::string_view, std::string_view family, MetricsText::Type type, std::string_view help,
                         double value) {
    if (family.empty()) return;
    const auto n = name(family);
    text_.family(n, type, help);
    text_.sample(n, value);
}

void CounterMetrics::by(std::string_view, std::string_view family, MetricsText::Type type, std::string_view help,
                        std::string_view label, const LabelledSamples& samples) {
    if (family.empty()) return;
    const auto n = name(family);
    text_.family(n, type, help);
    for (const auto& [label_value, value] : samples) text_.sample(n, value, {{label, label_value}});
}

}  // namespace unit::common
