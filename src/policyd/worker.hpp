// worker.hpp: what one thread of unitpolicy answers with: its own SQLite
// connection (a Directory over the replica), the settings snapshot of the
// moment and the resolver options taken from it. The conversations
// (conversation.hpp) resolve through a Worker; it counts each resolution in
// Stats and shows its Directory's status to its ReplicaWatch after each one,
// so that switches and refusals are counted and logged once.
// Thread safety: a Worker belongs to one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "common/replica_watch.hpp"
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
// settings snapshot it answers with, and that snapshot's resolver options
// without traces (nobody reads them on the request path). With a
// snapshot_hold the worker's lookups share read transactions
// (directory.hpp), and its owner calls tick() at least that often.
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
    std::shared_ptr<const Settings> settings_;
    Stats& stats_;
    std::shared_ptr<ValidationCache> validation_;  // may be null (--stdio)
    Directory directory_;
    ResolverOptions resolver_options_;  // settings_->resolver, untraced; renewed by reconfigure()
    common::ReplicaWatch replica_watch_;
};

}  // namespace unit::policyd
