#include "ctl/fleet_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/json_writer.hpp"

namespace unit::ctl {

namespace {

constexpr std::string_view daemons[] = {"unitpolicy", "unitmilter"};

}  // namespace

HostReport report_of(const std::vector<Sample>& samples) {
    HostReport report;
    for (auto daemon : daemons) {
        const auto generation = fmt::format("{}_replica_generation", daemon);
        if (std::any_of(samples.begin(), samples.end(), [&](const Sample& s) { return s.name == generation; })) {
            report.daemon = daemon;
            break;
        }
    }
    if (report.daemon.empty()) {
        report.error = "not unitpolicy or unitmilter metrics (no *_replica_generation)";
        return report;
    }
    const std::string prefix = report.daemon + "_";
    for (const auto& s : samples) {
        if (!s.name.starts_with(prefix)) continue;
        const auto name = std::string_view(s.name).substr(prefix.size());
        if (name == "replica_generation") report.generation = static_cast<std::int64_t>(s.value);
        else if (name == "replica_published_timestamp_seconds") report.published_at = static_cast<std::time_t>(s.value);
        else if (name == "replica_info") report.primary_id = std::string(s.label("primary_id").value_or(""));
        else if (name == "replica_pending") report.pending = s.value != 0;
        else if (name == "replica_refused" && s.value != 0)
            report.refused = std::string(s.label("reason").value_or("?"));
        else if (name == "replica_last_refusal_timestamp_seconds")
            report.last_refusal = static_cast<std::time_t>(s.value);
        else if (name == "held_messages" && s.label("unit"))
            report.held.emplace_back(std::string(*s.label("unit")), static_cast<std::int64_t>(s.value));
    }
    return report;
}

HostReport report_of(const Fetched& fetched) {
    if (!fetched.error.empty()) return HostReport::failed(fetched.error);
    auto samples = parse_prometheus_text(fetched.body);
    if (!samples) return HostReport::failed(fmt::format("not metrics text: {}", samples.error().message));
    return report_of(*samples);
}

std::string short_id(std::string_view primary_id) { return std::string(primary_id.substr(0, 8)); }

std::string short_duration(std::int64_t seconds) {
    if (seconds < 0) return fmt::format("-{}", short_duration(-seconds));  // a clock ahead: say so
    if (seconds < 120) return fmt::format("{}s", seconds);
    if (seconds < 120 * 60) return fmt::format("{}m", seconds / 60);
    if (seconds < 48 * 3600) return fmt::format("{}h", seconds / 3600);
    return fmt::format("{}d", seconds / 86400);
}

std::string status_line(const FleetHost& host, const HostReport& report, std::time_t now) {
    if (!report.answered()) return fmt::format("{}  no answer: {}", host.name, report.error);
    std::string line = fmt::format("{}  {}  generation {}  age {}  primary {}", host.name, report.daemon,
                                   report.generation,
                                   report.published_at == 0 ? "?" : short_duration(now - report.published_at),
                                   report.primary_id.empty() ? "?" : short_id(report.primary_id));
    if (report.pending) line += "  replacement pending";
    if (!report.refused.empty())
        line += fmt::format("  replacement refused ({}, {} ago)", report.refused,
                            short_duration(now - report.last_refusal));
    if (!report.held.empty()) {
        line += "  held";
        for (const auto& [unit, count] : report.held) line += fmt::format(" {}={}", unit, count);
    }
    return line;
}

std::string status_json(const FleetHost& host, const HostReport& report, std::time_t now) {
    common::JsonObject object;
    object.string("host", host.name).string("url", host.url);
    const auto string_or_null = [&](std::string_view name, const std::string& value, bool known) {
        if (known) object.string(name, value);
        else object.null(name);
    };
    const auto time_or_null = [&](std::string_view name, std::time_t value) {
        if (report.answered() && value != 0) object.number(name, value);
        else object.null(name);
    };
    const bool answered = report.answered();
    string_or_null("error", report.error, !answered);
    string_or_null("daemon", report.daemon, answered);
    if (answered) object.number("generation", report.generation);
    else object.null("generation");
    time_or_null("published_at", report.published_at);
    if (answered && report.published_at != 0) object.number("age_seconds", now - report.published_at);
    else object.null("age_seconds");
    string_or_null("primary_id", report.primary_id, answered && !report.primary_id.empty());
    if (answered) object.boolean("pending", report.pending);
    else object.null("pending");
    string_or_null("refused", report.refused, answered && !report.refused.empty());
    time_or_null("last_refusal", report.refused.empty() ? 0 : report.last_refusal);
    if (answered) {
        common::JsonObject held;
        for (const auto& [unit, count] : report.held) held.number(unit, count);
        object.json("held", held.text());
    } else {
        object.null("held");
    }
    return object.text();
}

std::optional<std::string> majority_primary(const std::vector<HostReport>& reports) {
    std::map<std::string, int> votes;
    for (const auto& r : reports)
        if (r.answered() && !r.primary_id.empty()) ++votes[r.primary_id];  // no identity: no vote
    std::optional<std::string> best;
    int best_votes = 0;
    bool tie = false;
    for (const auto& [id, n] : votes) {
        if (n > best_votes) {
            best = id;
            best_votes = n;
            tie = false;
        } else if (n == best_votes) {
            tie = true;
        }
    }
    return tie ? std::nullopt : best;
}

std::optional<std::string> lag_of(const HostReport& report, std::int64_t generation,
                                  const std::optional<std::string>& primary_id) {
    if (!report.answered()) return fmt::format("no answer: {}", report.error);
    // A snapshot without a primary_id (an older unitctl's) is judged by its generation alone, as the daemons do.
    if (primary_id && !report.primary_id.empty() && report.primary_id != *primary_id)
        return fmt::format("serves another primary ({}, generation {})", short_id(report.primary_id),
                           report.generation);
    if (report.generation < generation)
        return fmt::format("serves generation {}{}", report.generation,
                           report.refused.empty() ? "" : fmt::format(", replacement refused ({})", report.refused));
    return std::nullopt;
}

std::vector<std::string> lagging(const std::vector<FleetHost>& hosts, const std::vector<HostReport>& reports,
                                 const Target& target) {
    auto primary = target.primary_id;
    bool split = false;  // hosts serve several primaries, none of them most
    if (!primary) {
        primary = majority_primary(reports);
        std::set<std::string> ids;
        for (const auto& r : reports)
            if (r.answered() && !r.primary_id.empty()) ids.insert(r.primary_id);
        split = !primary && ids.size() > 1;
    }
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        auto why = lag_of(reports[i], target.generation, primary);
        if (!why && split)
            why = fmt::format("serves primary {}, and the fleet several", short_id(reports[i].primary_id));
        if (why) lines.push_back(fmt::format("{}: {}", hosts[i].name, *why));
    }
    return lines;
}

}  // namespace unit::ctl
