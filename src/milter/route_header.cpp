#include "milter/route_header.hpp"

#include <algorithm>
#include <limits>

namespace unit::milter {

namespace {

constexpr std::size_t fold_column = 78;
// What precedes the value on its first line ("X-Unit-Route: "), for folding.
constexpr std::size_t assumed_name_width = 14;

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept { return a.size() == b.size() && has_prefix(a, b); }

bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A decimal number, saturated at `cap`; nullopt when not all digits.
std::optional<std::int64_t> parse_decimal(std::string_view s, std::int64_t cap) noexcept {
    if (!all_digits(s)) return std::nullopt;
    std::int64_t n = 0;
    for (char c : s) {
        n = n * 10 + (c - '0');
        if (n >= cap) return cap;
    }
    return n;
}

bool is_host_char(char c) noexcept { return is_unit_name_char(c) || c == ':' || c == '[' || c == ']'; }

template <class Allowed>
std::string sanitise(std::string_view s, std::size_t max, Allowed allowed) {
    std::string out;
    for (char c : s.substr(0, max)) out += allowed(c) ? c : '_';
    return out;
}

}  // namespace

Reply loop_reply() { return {"451", "4.4.6", "routing loop: directory replicas disagree"}; }
Reply forged_headers_reply() { return {"550", "5.7.1", "too many forged routing headers"}; }

bool is_unit_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}

bool has_prefix(std::string_view name, std::string_view prefix) noexcept {
    if (name.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (lower(name[i]) != lower(prefix[i])) return false;
    return true;
}

Route parse_route(std::string_view value) {
    Route route;
    while (!value.empty()) {
        std::size_t semi = value.find(';');
        std::string_view param = value.substr(0, semi);
        value = semi == std::string_view::npos ? std::string_view() : value.substr(semi + 1);
        std::size_t eq = param.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view name = trim(param.substr(0, eq));
        std::string_view text = trim(param.substr(eq + 1));
        if (iequals(name, "hop")) {
            if (auto n = parse_decimal(text, max_hop_value))
                route.hop = std::max(route.hop.value_or(0), static_cast<int>(*n));
        } else if (iequals(name, "gen")) {
            if (!route.gen) route.gen = parse_decimal(text, std::numeric_limits<std::int64_t>::max() / 10);
        } else if (iequals(name, "units")) {
            while (!text.empty()) {
                std::size_t comma = text.find(',');
                std::string_view unit = trim(text.substr(0, comma));
                text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
                if (!unit.empty() && unit.size() <= max_unit_name &&
                    std::all_of(unit.begin(), unit.end(), is_unit_name_char))
                    route.units.emplace_back(unit);
            }
        } else if (iequals(name, "by")) {
            if (route.by.empty()) {
                for (char c : text.substr(0, max_host_name))
                    if (static_cast<unsigned char>(c) > ' ' && c != 0x7f) route.by += c;
            }
        }
    }
    return route;
}

std::string format_route(const Route& route) {
    std::vector<std::string> units;
    for (const auto& u : route.units) {
        std::string clean = sanitise(u, max_unit_name, is_unit_name_char);
        if (!clean.empty()) units.push_back(std::move(clean));
    }
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
    std::string by = sanitise(route.by, max_host_name, is_host_char);
    if (by.empty()) by = "unknown";

    std::string out = "hop=" + std::to_string(std::clamp(route.hop.value_or(0), 0, max_hop_value)) +
                      "; gen=" + std::to_string(std::max<std::int64_t>(route.gen.value_or(0), 0)) + "; units=";
    std::size_t line_start = 0;  // offset in `out` where the current line starts
    auto column = [&] { return out.size() - line_start + (line_start == 0 ? assumed_name_width : 0); };
    for (std::size_t i = 0; i < units.size(); ++i) {
        if (i > 0) out += ',';
        if (i > 0 && column() + units[i].size() + 1 > fold_column) {
            out += "\n\t";
            line_start = out.size() - 1;
        }
        out += units[i];
    }
    out += ';';
    if (column() + 4 + by.size() > fold_column) {
        out += "\n\t";
        line_start = out.size() - 1;
    } else {
        out += ' ';
    }
    out += "by=" + by;
    return out;
}

HeaderScan::HeaderScan(std::string prefix, std::size_t max_stripped)
    : prefix_(std::move(prefix)), route_name_(prefix_ + "Route"), max_stripped_(max_stripped) {}

void HeaderScan::add(std::string_view name, std::string_view value) {
    if (!has_prefix(name, prefix_)) return;
    ++occurrences_;
    if (flooded()) {
        // Nothing will be deleted by name any more: free the names at once.
        if (!prefixed_.empty()) {
            prefixed_ = {};
            index_ = {};
        }
    } else {
        std::string key(name);
        std::transform(key.begin(), key.end(), key.begin(), lower);
        if (auto known = index_.find(key); known != index_.end()) {
            ++prefixed_[known->second].count;
        } else {
            index_.emplace(std::move(key), prefixed_.size());
            prefixed_.push_back(Name{std::string(name), 1});
        }
    }
    if (iequals(name, route_name_)) {
        ++route_count_;
        Route route = parse_route(value);
        if (route.hop && *route.hop >= hop_.value_or(0)) {
            hop_ = *route.hop;
            gen_ = route.gen;
        }
    }
}

void HeaderScan::clear() noexcept {
    prefixed_.clear();
    index_.clear();
    occurrences_ = 0;
    route_count_ = 0;
    hop_.reset();
    gen_.reset();
}

HeaderVerdict check_headers(const HeaderScan& scan, bool trusted, int max_hops, const LoopContext& here) {
    HeaderVerdict verdict;
    if (!trusted) {
        if (scan.flooded()) verdict.refuse = forged_headers_reply();
        return verdict;  // a forged hop counts for nothing: it is deleted
    }
    verdict.incoming = scan.incoming_hop().value_or(0);
    if (verdict.incoming >= max_hops) {
        auto stamped = scan.incoming_generation();
        // Generations come from one primary: a host at least as new as the
        // one that stamped the route routes on data the loop did not see.
        bool caught_up = here.generation >= 0 && stamped && here.generation >= *stamped;
        verdict.released = here.delivered_here || (caught_up && verdict.incoming < 2 * max_hops);
        if (!verdict.released) verdict.refuse = loop_reply();
    }
    verdict.outgoing = std::min(verdict.incoming + 1, max_hop_value);
    return verdict;
}

std::vector<HeaderEdit> plan_headers(const HeaderScan& scan, bool trusted, const std::string& route_value) {
    std::vector<HeaderEdit> edits;
    auto delete_all = [&](const std::string& name, std::size_t count, std::size_t down_to) {
        for (std::size_t index = count; index >= down_to; --index)
            edits.push_back(HeaderEdit{HeaderEdit::Kind::Delete, name, static_cast<int>(index), {}});
    };
    if (!trusted) {
        for (const auto& n : scan.prefixed()) delete_all(n.name, static_cast<std::size_t>(n.count), 1);
        edits.push_back(HeaderEdit{HeaderEdit::Kind::Add, scan.route_name(), 0, route_value});
        return edits;
    }
    if (scan.route_count() == 0) {
        edits.push_back(HeaderEdit{HeaderEdit::Kind::Add, scan.route_name(), 0, route_value});
        return edits;
    }
    if (!scan.routes_flooded()) delete_all(scan.route_name(), scan.route_count(), 2);
    edits.push_back(HeaderEdit{HeaderEdit::Kind::Change, scan.route_name(), 1, route_value});
    return edits;
}

}  // namespace unit::milter
