// conversation.hpp: one client connection's protocol logic, without the
// socket: bytes in, reply bytes out. The server, --stdio mode and the tests
// all drive these, so what a socket client sees is tested without sockets.
//
// feed() parses every complete request in the bytes, resolves it on the
// worker's Resolver and appends the replies, in order, to `out`. It returns
// false when the stream is broken (a limit or a malformed frame): the caller
// logs error() once and closes the connection; the replies already appended
// are still to be sent. Each request is counted in Stats and timed.
// Thread safety: a Conversation and its Worker belong to one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/netstring.hpp"
#include "policyd/policy_request.hpp"
#include "policyd/settings.hpp"
#include "policyd/stats.hpp"
#include "unit/directory.hpp"
#include "unit/resolver.hpp"

namespace unit::policyd {

// The replica as a thread of the daemon opens it: the settings' database,
// validation and lookup bounds.
DirectoryOptions directory_options(const Settings& settings, std::shared_ptr<ValidationCache> validation,
                                   std::chrono::milliseconds snapshot_hold);

// What one worker thread owns: its own SQLite connection (Directory), the
// resolver over it (without traces: nobody reads them on the request path),
// and the settings snapshot it answers with. With a snapshot_hold the
// worker's lookups share read transactions (directory.hpp), and its owner
// calls tick() at least that often.
class Worker {
public:
    Worker(std::shared_ptr<const Settings> settings, Stats& stats, std::shared_ptr<ValidationCache> validation,
           std::chrono::milliseconds snapshot_hold = std::chrono::milliseconds(0));

    Resolution resolve(std::string_view address);
    DomainResolution resolve_domain(std::string_view domain);
    const Settings& settings() const noexcept { return *settings_; }
    // A new configuration (SIGHUP); the database path stays.
    void reconfigure(std::shared_ptr<const Settings> settings);
    Stats& stats() noexcept { return stats_; }
    Directory& directory() noexcept { return directory_; }
    // Called by the owner at least every snapshot_hold, with or without
    // traffic: ends an expired read, and takes (or refuses, logs and counts)
    // a replacement whose verdict came in, so that an idle daemon reports a
    // refused file too.
    void tick() noexcept;

private:
    void note_replica_changes();

    std::shared_ptr<const Settings> settings_;
    Stats& stats_;
    std::shared_ptr<ValidationCache> validation_;  // may be null (--stdio)
    Directory directory_;
    std::optional<Resolver> resolver_;  // re-made on reconfigure (it holds a reference)
    std::uint64_t switches_seen_ = 0, refusals_seen_ = 0;
    std::int64_t generation_seen_ = -1;
    std::string problem_seen_;
};

class PolicyConversation {
public:
    explicit PolicyConversation(Worker& worker);
    bool feed(std::string_view in, std::string& out);
    const std::string& error() const noexcept { return parser_.error(); }

private:
    // The action text: static, or in the worker's settings.
    std::string_view answer(const PolicyRequest& request);

    Worker& worker_;
    PolicyParser parser_;
};

class SocketmapConversation {
public:
    explicit SocketmapConversation(Worker& worker);
    bool feed(std::string_view in, std::string& out);
    const std::string& error() const noexcept { return error_.empty() ? decoder_.error() : error_; }

private:
    std::string answer(std::string_view request);

    Worker& worker_;
    common::NetstringDecoder decoder_;
    std::string error_;
};

}  // namespace unit::policyd
