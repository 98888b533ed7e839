#include "policyd/held_mail.hpp"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <fmt/format.h>

#include <condition_variable>
#include <ctime>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/log.hpp"
#include "policyd/conversation.hpp"
#include "policyd/program.hpp"

namespace unit::policyd {

using common::Severity;

namespace {

constexpr std::string_view deferred_transport = "deferred transport";  // Postfix's reason under defer_transports
constexpr std::chrono::seconds poll_interval{1};  // how often the thread looks for a new generation
// After a scan that released mail, the next comes this soon (or at the
// interval, when shorter): a message the queue manager sent along its cached,
// held route (30 s) is released again quickly once that cache expires.
constexpr std::chrono::seconds after_release{3};
const ProgramLimits list_limits{std::chrono::milliseconds(60'000), 16 << 20};
const ProgramLimits release_limits{std::chrono::milliseconds(10'000), 64 << 10};

bool starts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

// ------------------------------------------------------------ decision

std::optional<QueuedMessage> parse_queue_line(std::string_view line) {
    namespace pt = boost::property_tree;
    pt::ptree tree;
    try {
        std::istringstream in{std::string(line)};
        pt::read_json(in, tree);
        QueuedMessage m;
        m.queue_name = tree.get<std::string>("queue_name", "");
        m.queue_id = tree.get<std::string>("queue_id", "");
        if (m.queue_id.empty()) return std::nullopt;
        if (auto recipients = tree.get_child_optional("recipients"))
            for (const auto& [key, r] : *recipients)
                m.recipients.push_back({r.get<std::string>("address", ""), r.get<std::string>("delay_reason", "")});
        return m;
    } catch (const pt::ptree_error&) {
        return std::nullopt;
    }
}

bool was_held(std::string_view delay_reason) noexcept {
    return delay_reason == deferred_transport || delay_reason.find(held_socket_prefix) != std::string_view::npos;
}

HeldRoute route_of(const Resolution& r, const AnswerSettings& settings) {
    const auto map = settings.unit.empty() ? MapName::TransportMx : MapName::TransportUnit;
    const MapReply reply = map_reply(map, r, settings);
    if (reply.kind != ReplyKind::Ok) return {};
    const std::string_view route = std::string_view(reply.text).substr(3);  // after "OK "
    const bool held = settings.hold_mode == HoldMode::Defer ? starts_with(route, "retry:")
                                                            : starts_with(route, settings.hold_transport + ':');
    if (!held) return {HeldRoute::Kind::Deliverable, {}};
    // The unit is named by the route (transport mode), else by the mailbox.
    if (auto at = route.find(held_socket_prefix); at != std::string_view::npos)
        return {HeldRoute::Kind::Held, std::string(route.substr(at + held_socket_prefix.size()))};
    const Destination* d = r.destination ? &*r.destination : nullptr;
    for (const auto& t : r.targets)
        if (!d && t.address == r.address && t.destination) d = &*t.destination;
    return {HeldRoute::Kind::Held, d ? d->mailbox.unit : std::string(no_route_unit)};
}

void HeldScan::add(const QueuedMessage& message) {
    if (message.queue_name != "deferred") return;
    std::set<std::string> units;
    bool release = false;
    for (const auto& recipient : message.recipients) {
        auto found = routes_.find(recipient.address);
        if (found == routes_.end()) found = routes_.emplace(recipient.address, router_(recipient.address)).first;
        const HeldRoute& route = found->second;
        const bool held_before = was_held(recipient.delay_reason);
        switch (route.kind) {
        case HeldRoute::Kind::Held: units.insert(route.unit); break;
        case HeldRoute::Kind::Deliverable: release = release || held_before; break;
        case HeldRoute::Kind::NoRoute:
            if (held_before) units.insert(std::string(no_route_unit));
            break;
        }
    }
    for (const auto& unit : units) ++held_[unit];
    if (release) release_.push_back(message.queue_id);
}

// ------------------------------------------------------------ watcher

struct HeldMailWatcher::Impl {
    Stats& stats;
    std::shared_ptr<ValidationCache> validation;
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;                     // under mutex
    std::shared_ptr<const Settings> settings;  // under mutex
    std::thread thread;
    // The scanning thread's own.
    std::optional<Directory> directory;
    std::int64_t scanned_generation = -1;
    std::string error_seen;

    Impl(std::shared_ptr<const Settings> s, Stats& st, std::shared_ptr<ValidationCache> v)
        : stats(st), validation(std::move(v)), settings(std::move(s)) {}

    std::shared_ptr<const Settings> current() {
        std::lock_guard lock(mutex);
        return settings;
    }
    bool stopped() {
        std::lock_guard lock(mutex);
        return stopping;
    }
    void run();
    // Returns whether it released mail. `serving`: the generation the
    // workers serve, the one this scan is for.
    bool scan(const Settings& s, std::int64_t serving);
    std::vector<std::string> postqueue(const Settings& s, std::initializer_list<std::string> args) const;
    void note_error(const std::string& error);
};

std::vector<std::string> HeldMailWatcher::Impl::postqueue(const Settings& s,
                                                          std::initializer_list<std::string> args) const {
    std::vector<std::string> argv{s.postqueue};
    if (!s.postfix_config_directory.empty()) argv.insert(argv.end(), {"-c", s.postfix_config_directory});
    argv.insert(argv.end(), args);
    return argv;
}

// Each new error once, and once that it is over.
void HeldMailWatcher::Impl::note_error(const std::string& error) {
    if (error == error_seen) return;
    if (!error.empty()) common::log(Severity::Warning, "held mail: {}: not scanning the queue", error);
    else common::log(Severity::Info, "held mail: postqueue works again");
    error_seen = error;
}

bool HeldMailWatcher::Impl::scan(const Settings& s, std::int64_t serving) {
    if (!directory) directory.emplace(directory_options(s, validation, std::chrono::milliseconds(0)));
    // Switch to the newest good snapshot now, even with an empty queue (no
    // lookup), and note which generation this scan answers for: while this
    // thread is still on an older one than the workers (its validation under
    // way), it scans again a second later; with none at all, at the interval.
    (void)directory->read();
    scanned_generation = directory->status().serving ? directory->status().snapshot.generation : serving;
    ResolverOptions options = s.resolver;
    options.trace = false;
    HeldScan decision([&](std::string_view address) {
        return route_of(resolve(*directory, options, address), s.answers);
    });
    auto listed = run_program(postqueue(s, {"-j"}), list_limits, [&](std::string_view line) {
        if (auto message = parse_queue_line(line)) decision.add(*message);
    });
    if (!listed) {
        stats.held_scan_errors++;
        note_error(listed.error().message);
        return false;
    }
    std::uint64_t released = 0;
    std::string release_error;
    const auto& ids = decision.release();
    if (ids.size() > max_single_releases) {
        auto done = run_program(postqueue(s, {"-f"}), release_limits, [](std::string_view) {});
        if (done) released = ids.size();
        else release_error = done.error().message;
    } else {
        for (const auto& id : ids) {
            if (stopped()) break;
            auto done = run_program(postqueue(s, {"-i", id}), release_limits, [](std::string_view) {});
            if (done) ++released;
            else release_error = done.error().message;  // gone meanwhile, or postqueue failing: the next scan sees
        }
    }
    if (!release_error.empty()) stats.held_scan_errors++;
    note_error(release_error);
    stats.held_released += released;
    stats.set_held(decision.held());
    stats.held_scanned_at = static_cast<std::uint64_t>(std::time(nullptr));
    if (released)
        common::log(Severity::Info, "held mail: released {} message{} (generation {}{})", released,
                    released == 1 ? "" : "s", scanned_generation,
                    ids.size() > max_single_releases ? ", postqueue -f" : "");
    return released > 0;
}

// Scans as soon as the daemon serves a generation this thread has not
// scanned with, and every held_mail_interval.
void HeldMailWatcher::Impl::run() {
    std::optional<std::chrono::steady_clock::time_point> last_scan;  // none yet: scan at once
    bool released = false;
    std::unique_lock lock(mutex);
    while (!stopping) {
        auto s = settings;
        lock.unlock();
        const auto now = std::chrono::steady_clock::now();
        const auto serving = static_cast<std::int64_t>(stats.replica.generation.load(std::memory_order_relaxed));
        const bool new_generation = serving > 0 && serving != scanned_generation;
        const auto interval = released ? std::min<std::chrono::seconds>(s->held_mail_interval, after_release)
                                       : s->held_mail_interval;
        if (s->held_mail_interval.count() > 0 && (new_generation || !last_scan || now - *last_scan >= interval)) {
            try {
                released = scan(*s, serving);
            } catch (const std::exception& e) {  // allocation failure: the next scan tries again
                released = false;
                stats.held_scan_errors++;
                note_error(e.what());
            }
            last_scan = std::chrono::steady_clock::now();
        }
        lock.lock();
        wake.wait_for(lock, poll_interval, [this] { return stopping; });
    }
}

HeldMailWatcher::HeldMailWatcher(std::shared_ptr<const Settings> settings, Stats& stats,
                                 std::shared_ptr<ValidationCache> validation)
    : impl_(std::make_unique<Impl>(std::move(settings), stats, std::move(validation))) {}

HeldMailWatcher::~HeldMailWatcher() { stop(); }

void HeldMailWatcher::start() {
    if (!impl_->thread.joinable()) impl_->thread = std::thread([this] { impl_->run(); });
}

void HeldMailWatcher::stop() noexcept {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_all();
    if (impl_->thread.joinable()) impl_->thread.join();
}

void HeldMailWatcher::reconfigure(std::shared_ptr<const Settings> settings) {
    std::lock_guard lock(impl_->mutex);
    impl_->settings = std::move(settings);
}

}  // namespace unit::policyd
