// prometheus_text.hpp: reads the samples of the Prometheus text exposition
// format (version 0.0.4), what `unitctl fleet` needs of a daemon's /metrics.
//
// A sample line is `name value [timestamp]` or `name{label="value",...}
// value [timestamp]`; label values may hold \\, \" and \n escapes; the
// value is a float, +Inf, -Inf or NaN. Blank lines and lines starting with
// '#' (HELP, TYPE, comments) are skipped. A malformed line is an error
// (Errc::Invalid, "line N: why"): a reply that is not metrics text (an HTML
// page from a proxy) must not pass for a host serving nothing. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unit/result.hpp"

namespace unit::ctl {

struct Sample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;  // in the order given
    double value = 0;

    // The value of label `key`, when the sample has it.
    std::optional<std::string_view> label(std::string_view key) const;
};

Result<std::vector<Sample>> parse_prometheus_text(std::string_view text);

}  // namespace unit::ctl
