// fleet_report.hpp: what one host of the fleet says of its replica, read
// from its /metrics, and the decisions of `unitctl fleet` over all of them.
//
// A host is a unitpolicy or a unitmilter, recognised by the prefix of its
// PREFIX_replica_generation gauge. Read from it: the generation served and
// when it was published, PREFIX_replica_info{primary_id}, a pending
// replacement, the refusal holding now and the last one's time, and the
// held messages per unit (PREFIX_held_messages{unit}) when it exports them.
// Pure: the clock is a parameter.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctl/fleet_fetch.hpp"
#include "ctl/fleet_hosts.hpp"
#include "ctl/prometheus_text.hpp"

namespace unit::ctl {

struct HostReport {
    std::string error;   // why the host gave no report; the rest is empty then
    std::string daemon;  // "unitpolicy" or "unitmilter"
    std::int64_t generation = 0;
    std::time_t published_at = 0;  // 0: not stamped (or not exported)
    std::string primary_id;        // "" when the snapshot has none, or the daemon does not say
    bool pending = false;
    std::string refused;  // the reason of the refusal holding now; "" when none
    std::time_t last_refusal = 0;
    std::vector<std::pair<std::string, std::int64_t>> held;  // unit, messages held for it

    bool answered() const noexcept { return error.empty(); }
    static HostReport failed(std::string why) {
        HostReport report;
        report.error = std::move(why);
        return report;
    }
};

// The report of a host's samples; an error when they are no daemon's.
HostReport report_of(const std::vector<Sample>& samples);
// The report of a fetch: its error, the parser's, or report_of.
HostReport report_of(const Fetched& fetched);

// One line of `fleet status` for `host`.
std::string status_line(const FleetHost& host, const HostReport& report, std::time_t now);

// The same as one JSON object (unitctl(8), JSON OUTPUT): every field
// always present, null where the host did not say (or did not answer);
// times as Unix seconds, primary_id whole.
std::string status_json(const FleetHost& host, const HostReport& report, std::time_t now);

// The primary `wait` expects, when the primary database does not say: the
// primary_id most answering hosts serve (a snapshot without one has no
// vote); nullopt when they tie or none has one.
std::optional<std::string> majority_primary(const std::vector<HostReport>& reports);

// Why `report` keeps `wait` waiting for generation `generation` of the
// primary `primary_id` (any when nullopt): "serves generation 4", "serves
// another primary (3f2a..)", "no answer: ..."; nullopt when it is there.
std::optional<std::string> lag_of(const HostReport& report, std::int64_t generation,
                                  const std::optional<std::string>& primary_id);

// What `wait` waits for: a generation, of one primary when it is known.
struct Target {
    std::int64_t generation = 0;
    std::optional<std::string> primary_id;  // nullopt: the one most hosts serve (majority_primary)
};

// The decision of `wait`: the hosts that keep it waiting, "NAME: why" each
// (lag_of), in the hosts' order; empty when every one is there. Without a
// primary known nor one most hosts serve, hosts serving several primaries
// all lag ("serves primary ID, and the fleet several").
std::vector<std::string> lagging(const std::vector<FleetHost>& hosts, const std::vector<HostReport>& reports,
                                 const Target& target);

// The first characters of a primary_id, as printed.
std::string short_id(std::string_view primary_id);
// A duration as printed: 42s, 5m, 3h, 2d.
std::string short_duration(std::int64_t seconds);

}  // namespace unit::ctl
