// held_mail.hpp: the held-mail watcher (unitpolicy(8), "Holding mail").
//
// Mail for a recipient that cannot go to its unit now (its mailbox is
// moving, suspended, or its unit is down) is routed to the hold transport,
// listed in Postfix's defer_transports, with a nexthop that never exists
// (answers.hpp, held_nexthop): it waits in the deferred queue. Postfix would
// send it only at its next deferred-queue run, minutes to an hour after the
// route changed. The watcher releases it within seconds instead.
//
// Contract of a scan (one per served generation, right after the daemon
// serves it, and one every held_mail_interval; 3 s after a scan that
// released mail, when that is sooner):
// - `postqueue [-c DIR] -j` lists the queue (run_program: no shell, bounded
//   time and line length). Only messages of the deferred queue count.
// - Each recipient is resolved with the current snapshot and routed as the
//   transport map would answer it (transportmx, or transportunit with
//   `unit`): Held (to the hold transport, on its unit), Deliverable (any
//   other route), or NoRoute (unknown, disabled, foreign, a TEMP answer, a
//   negative in doubt).
// - A message is held for each unit one of its recipients is held on,
//   counted once per unit; a recipient that was held (was_held) and has no
//   route now counts it under no_route_unit.
// - A message is released (`postqueue -i QUEUEID`) when one of its
//   recipients was held and is Deliverable now; more than
//   max_single_releases of them are released by one `postqueue -f` instead
//   (a postqueue run costs about 6 ms: 10,000 runs would take a minute),
//   which is as safe, for the reason below. Safe whatever its other
//   recipients are: -i overrides defer_transports, and a recipient still
//   held goes to the hold nexthop, which defers it again. Unknown,
//   disabled and tempfailing recipients are never released: Postfix's own
//   queue runs decide for them. A release that the queue manager answers
//   from its 30 s resolution cache (the old, held route) leaves the message
//   deferred with the hold nexthop as its reason: the next scan (within
//   3 s) releases it again, until a delivery attempt replaces that reason.
// - The results go to Stats: held messages per unit, the scan's time,
//   messages released, scans that failed. A failing postqueue is logged
//   once per change of its error (and once when it works again); a scan
//   that released messages logs one info line with their count.
//
// The parsing and the decision (parse_queue_line, was_held, route_of,
// HeldScan) do no I/O and are tested without Postfix; HeldMailWatcher is
// the thread (daemon mode only, never --stdio, --query or --dump).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "policyd/answers.hpp"
#include "policyd/settings.hpp"
#include "policyd/stats.hpp"
#include "unit/directory.hpp"
#include "unit/resolver.hpp"

namespace unit::policyd {

// Releases beyond which one flush replaces one `postqueue -i` each.
inline constexpr std::size_t max_single_releases = 100;

// The label of held messages whose recipient has no route now (not a unit
// name: a unit name has no parentheses).
inline constexpr std::string_view no_route_unit = "(none)";

struct QueuedRecipient {
    std::string address;
    std::string delay_reason;  // empty when Postfix gave none
};

struct QueuedMessage {
    std::string queue_name;  // "deferred", "active", "incoming", "hold", "maildrop"
    std::string queue_id;
    std::vector<QueuedRecipient> recipients;
};

// One line of `postqueue -j` (one JSON object per message); nullopt for a
// line that is not such an object, or has no queue_id.
std::optional<QueuedMessage> parse_queue_line(std::string_view line);

// Whether a recipient's delay reason says it was held: "deferred transport"
// (defer_transports), or a connection to the hold nexthop (a flush).
bool was_held(std::string_view delay_reason) noexcept;

struct HeldRoute {
    enum class Kind { Deliverable, Held, NoRoute };
    Kind kind = Kind::NoRoute;
    std::string unit;  // Held: the unit the mail waits for
};

// How the transport map routes the resolved recipient now (map_reply of
// transportmx, or transportunit when settings.unit is set).
HeldRoute route_of(const Resolution& r, const AnswerSettings& settings);

// The decision over one scan's messages, fed one at a time.
class HeldScan {
public:
    using Router = std::function<HeldRoute(std::string_view address)>;
    explicit HeldScan(Router router) : router_(std::move(router)) {}

    void add(const QueuedMessage& message);
    // Held messages per unit (no_route_unit for those without a route).
    const std::map<std::string, std::uint64_t>& held() const noexcept { return held_; }
    // Queue ids to release, in the order seen.
    const std::vector<std::string>& release() const noexcept { return release_; }

private:
    Router router_;
    std::map<std::string, HeldRoute> routes_;  // per address, within this scan
    std::map<std::string, std::uint64_t> held_;
    std::vector<std::string> release_;
};

// The watcher thread. start() after the daemon dropped its privileges;
// stop() (or the destructor) ends it within a second, or within the
// postqueue run under way (bounded). reconfigure() takes a new
// configuration (SIGHUP) at the next scan. Does nothing when
// held_mail_interval is 0.
class HeldMailWatcher {
public:
    HeldMailWatcher(std::shared_ptr<const Settings> settings, Stats& stats,
                    std::shared_ptr<ValidationCache> validation);
    ~HeldMailWatcher();
    HeldMailWatcher(const HeldMailWatcher&) = delete;
    HeldMailWatcher& operator=(const HeldMailWatcher&) = delete;

    void start();
    void stop() noexcept;
    void reconfigure(std::shared_ptr<const Settings> settings);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace unit::policyd
