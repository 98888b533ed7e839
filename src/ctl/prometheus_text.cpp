#include "ctl/prometheus_text.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace unit::ctl {

namespace {

bool name_char(char c, bool first) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalpha(u) != 0 || c == '_' || c == ':' || (!first && std::isdigit(u) != 0);
}

// A metric or label name at the start of `rest`, consumed; empty when none.
std::string take_name(std::string_view& rest) {
    std::size_t n = 0;
    while (n < rest.size() && name_char(rest[n], n == 0)) ++n;
    std::string name(rest.substr(0, n));
    rest.remove_prefix(n);
    return name;
}

void skip_blanks(std::string_view& rest) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
}

std::optional<double> parse_value(std::string_view text) {
    if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
    if (text == "-Inf") return -std::numeric_limits<double>::infinity();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (text.empty()) return std::nullopt;
    const std::string copy(text);  // strtod needs a terminated string
    char* end = nullptr;
    const double value = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size()) return std::nullopt;
    return value;
}

// `{a="x",b="y"}` at the start of `rest` into `labels`; an explanation when malformed.
std::string take_labels(std::string_view& rest, std::vector<std::pair<std::string, std::string>>& labels) {
    rest.remove_prefix(1);  // '{'
    for (;;) {
        skip_blanks(rest);
        if (!rest.empty() && rest.front() == '}') break;
        auto key = take_name(rest);
        if (key.empty()) return "bad label name";
        skip_blanks(rest);
        if (rest.size() < 2 || rest[0] != '=' || rest[1] != '"') return fmt::format("label {}: expected =\"", key);
        rest.remove_prefix(2);
        std::string value;
        for (;;) {
            if (rest.empty()) return fmt::format("label {}: unterminated value", key);
            const char c = rest.front();
            rest.remove_prefix(1);
            if (c == '"') break;
            if (c != '\\') {
                value += c;
                continue;
            }
            if (rest.empty()) return fmt::format("label {}: unterminated value", key);
            const char escaped = rest.front();
            rest.remove_prefix(1);
            value += escaped == 'n' ? '\n' : escaped;  // \\ and \" stand for themselves
        }
        labels.emplace_back(std::move(key), std::move(value));
        skip_blanks(rest);
        if (!rest.empty() && rest.front() == ',') {
            rest.remove_prefix(1);
            continue;
        }
        if (rest.empty() || rest.front() != '}') return "expected , or } after a label";
        break;
    }
    rest.remove_prefix(1);  // '}'
    return {};
}

std::string parse_line(std::string_view line, Sample& sample) {
    sample.name = take_name(line);
    if (sample.name.empty()) return "expected a metric name";
    if (!line.empty() && line.front() == '{')
        if (auto problem = take_labels(line, sample.labels); !problem.empty()) return problem;
    if (line.empty() || (line.front() != ' ' && line.front() != '\t')) return "expected a value after the name";
    skip_blanks(line);
    const auto end = line.find_first_of(" \t");
    const auto value = parse_value(line.substr(0, end));
    if (!value) return fmt::format("bad value '{}'", line.substr(0, end));
    sample.value = *value;
    // A timestamp may follow; unitctl has no use for it.
    return {};
}

}  // namespace

std::optional<std::string_view> Sample::label(std::string_view key) const {
    for (const auto& [k, v] : labels)
        if (k == key) return std::string_view(v);
    return std::nullopt;
}

Result<std::vector<Sample>> parse_prometheus_text(std::string_view text) {
    std::vector<Sample> samples;
    std::size_t number = 0;
    while (!text.empty()) {
        const auto newline = text.find('\n');
        auto line = text.substr(0, newline);
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        ++number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        skip_blanks(line);
        if (line.empty() || line.front() == '#') continue;
        Sample sample;
        if (auto problem = parse_line(line, sample); !problem.empty())
            return make_error(Errc::Invalid, fmt::format("line {}: {}", number, problem));
        samples.push_back(std::move(sample));
    }
    return samples;
}

}  // namespace unit::ctl
