#include "policyd/worker.hpp"

namespace unit::policyd {

DirectoryOptions directory_options(const Settings& s, std::shared_ptr<ValidationCache> validation,
                                   std::chrono::milliseconds snapshot_hold) {
    DirectoryOptions o;
    o.path = s.db;
    o.validation = std::move(validation);
    o.snapshot_hold = snapshot_hold;
    o.validation_timeout = s.validation_timeout;
    o.lookup_timeout = s.lookup_timeout;
    return o;
}

namespace {

// Nobody reads a trace on the request path.
ResolverOptions untraced(ResolverOptions o) {
    o.trace = false;
    return o;
}

}  // namespace

Worker::Worker(std::shared_ptr<const Settings> settings, Stats& stats, std::shared_ptr<ValidationCache> validation,
               std::chrono::milliseconds snapshot_hold)
    : settings_(std::move(settings)), stats_(stats), validation_(validation),
      directory_(directory_options(*settings_, std::move(validation), snapshot_hold)),
      resolver_options_(untraced(settings_->resolver)), replica_watch_(directory_.status()) {}

void Worker::reconfigure(std::shared_ptr<const Settings> settings) {
    settings_ = std::move(settings);
    resolver_options_ = untraced(settings_->resolver);
}

void Worker::tick() noexcept {
    directory_.end_expired_read();
    directory_.refresh();
    replica_watch_.observe(directory_.status(), validation_.get(), stats_.replica);
}

Resolution Worker::resolve(std::string_view address) {
    Resolution r = unit::resolve(directory_, resolver_options_, address);
    replica_watch_.observe(directory_.status(), validation_.get(), stats_.replica);
    stats_.count(r.outcome);
    if (r.outcome == Outcome::Tempfail) stats_.count(r.cause);
    return r;
}

DomainResolution Worker::resolve_domain(std::string_view domain) {
    DomainResolution d = unit::resolve_domain(directory_, resolver_options_, domain);
    replica_watch_.observe(directory_.status(), validation_.get(), stats_.replica);
    if (d.outcome == DomainOutcome::Tempfail) stats_.count(d.cause);
    return d;
}

}  // namespace unit::policyd
