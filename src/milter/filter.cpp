#include "milter/filter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "milter/message_plan.hpp"
#include "milter/networks.hpp"
#include "milter/route_header.hpp"
#include "unit/checked_files.hpp"
#include "unit/directory.hpp"
#include "unit/resolver.hpp"

namespace unit::milter {

namespace {

using common::log;
using common::printable;
using common::Severity;

// ------------------------------------------------------------ connection pool

struct Slot {
    explicit Slot(DirectoryOptions directory_options)
        : directory(std::move(directory_options)), replica_watch(directory.status()) {}
    Directory directory;
    common::ReplicaWatch replica_watch;
};

class ConnectionPool {
public:
    explicit ConnectionPool(DirectoryOptions directory) : directory_(std::move(directory)) {}

    class Lease {
    public:
        Lease(ConnectionPool& pool, std::unique_ptr<Slot> slot) : pool_(pool), slot_(std::move(slot)) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() {
            pool_.note_replica_changes(*slot_);
            pool_.give_back(std::move(slot_));
        }
        Directory& directory() noexcept { return slot_->directory; }

    private:
        ConnectionPool& pool_;
        std::unique_ptr<Slot> slot_;
    };

    // The idle connections look for a replacement of the replica now, as a
    // busy one does at its next read: each switches to a good one, which
    // closes the file it replaces (a replaced file stays open, on disk,
    // while any connection holds it), and a refused one is reported. Each
    // idle slot is taken out of the pool meanwhile: a checkout opens a new
    // one rather than wait.
    void tick_idle() noexcept {
        std::vector<std::unique_ptr<Slot>> slots;
        {
            std::lock_guard lock(mutex_);
            slots.swap(idle_);
        }
        for (auto& slot : slots) {
            slot->directory.end_expired_read();
            slot->directory.refresh();
            note_replica_changes(*slot);
            give_back(std::move(slot));
        }
    }

    Lease checkout() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                auto slot = std::move(idle_.back());
                idle_.pop_back();
                return Lease(*this, std::move(slot));
            }
        }
        // Opening happens outside the lock; the Directory opens lazily anyway.
        auto slot = std::make_unique<Slot>(directory_);
        return Lease(*this, std::move(slot));
    }

private:
    void note_replica_changes(Slot& slot) noexcept {
        slot.replica_watch.observe(slot.directory.status(), directory_.validation.get(), filter_stats().replica);
    }

    void give_back(std::unique_ptr<Slot> slot) noexcept {
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(slot));
    }

    DirectoryOptions directory_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Slot>> idle_;
};

// ------------------------------------------------------------ configuration snapshot

DirectoryOptions directory_options(const Settings& s, std::shared_ptr<ValidationCache> validation) {
    DirectoryOptions o{s.db, std::chrono::milliseconds(250), std::chrono::milliseconds(200), std::move(validation)};
    o.validation_timeout = s.validation_timeout;
    o.lookup_timeout = s.lookup_timeout;
    o.snapshot_hold = snapshot_hold;
    return o;
}

struct Runtime {
    explicit Runtime(std::shared_ptr<const Settings> s, std::shared_ptr<ValidationCache> validation)
        : settings(std::move(s)), pool(directory_options(*settings, std::move(validation))) {}
    std::shared_ptr<const Settings> settings;
    ConnectionPool pool;
};

struct Current {
    std::mutex mutex;
    std::shared_ptr<Runtime> runtime;
    std::shared_ptr<ValidationCache> validation;  // made by the first install_settings()
};

Current& current() {
    static Current c;
    return c;
}

std::shared_ptr<Runtime> current_runtime() {
    Current& c = current();
    std::lock_guard lock(c.mutex);
    return c.runtime;
}

// ------------------------------------------------------------ per connection

struct Session {
    explicit Session(std::shared_ptr<Runtime> r)
        : runtime(std::move(r)), headers(runtime->settings->header_prefix, runtime->settings->max_stripped_headers) {}

    void reset_message() noexcept {
        headers.clear();
        recipients.clear();
        recipients_dropped = 0;
    }
    const Settings& settings() const noexcept { return *runtime->settings; }

    std::shared_ptr<Runtime> runtime;
    unsigned long protocol = 0;  // the SMFIP_* flags negotiated
    std::string client = "unknown";
    bool trusted = false;
    HeaderScan headers;
    std::vector<std::string> recipients;  // as the MTA gave them, for smfi_delrcpt
    std::size_t recipients_dropped = 0;
};

Session* session_of(SMFICTX* ctx) noexcept { return static_cast<Session*>(smfi_getpriv(ctx)); }

Session* make_session(SMFICTX* ctx) {
    auto runtime = current_runtime();
    if (!runtime) return nullptr;
    auto session = std::make_unique<Session>(std::move(runtime));
    if (smfi_setpriv(ctx, session.get()) != MI_SUCCESS) return nullptr;
    return session.release();
}

// The answer to a stage that may have been negotiated as "no reply".
sfsistat carry_on(const Session* s, unsigned long no_reply_flag) noexcept {
    return s != nullptr && (s->protocol & no_reply_flag) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

std::string symbol(SMFICTX* ctx, const char* name) {
    char buffer[32];
    std::string_view n(name);
    if (n.size() >= sizeof buffer) return {};
    std::copy(n.begin(), n.end(), buffer);
    buffer[n.size()] = '\0';
    const char* value = smfi_getsymval(ctx, buffer);
    return value != nullptr ? std::string(value) : std::string();
}

std::string queue_id(SMFICTX* ctx) {
    std::string id = symbol(ctx, "i");
    // A queue id is letters and digits; anything else is not logged verbatim.
    bool clean = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
    return clean ? id : "NOQUEUE";
}

bool set_reply(SMFICTX* ctx, const Reply& reply) {
    std::string code = reply.code, xcode = reply.xcode, text = reply.text;
    return smfi_setreply(ctx, code.data(), xcode.data(), text.data()) == MI_SUCCESS;
}

// ------------------------------------------------------------ applying edits

bool apply_header_edit(SMFICTX* ctx, const HeaderEdit& edit) {
    std::string name = edit.name, value = edit.value;
    switch (edit.kind) {
    case HeaderEdit::Kind::Delete: return smfi_chgheader(ctx, name.data(), edit.index, nullptr) == MI_SUCCESS;
    case HeaderEdit::Kind::Change: return smfi_chgheader(ctx, name.data(), edit.index, value.data()) == MI_SUCCESS;
    case HeaderEdit::Kind::Add: return smfi_addheader(ctx, name.data(), value.data()) == MI_SUCCESS;
    }
    return false;
}

// Refuses the message with `reply`: rejected when it is a 5xx, else tempfailed.
sfsistat refuse(SMFICTX* ctx, const Reply& reply) {
    auto& stats = filter_stats();
    MilterStats::add(reply.xcode == "4.4.6"   ? stats.refused_loop
                     : reply.xcode == "5.7.1" ? stats.refused_header_flood
                                              : stats.refused_other);
    set_reply(ctx, reply);
    return reply.code.front() == '5' ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

// Applies the plan's envelope edits; false (logged) when libmilter refuses one.
bool apply_expansions(SMFICTX* ctx, const std::vector<Expansion>& expansions, const std::string& qid) {
    for (const auto& e : expansions) {
        if (!e.keep) {
            std::string raw = e.raw;
            if (smfi_delrcpt(ctx, raw.data()) != MI_SUCCESS) {
                log(Severity::Error, "{}: milter: cannot delete recipient {}: refusing with 451 4.3.0", qid,
                    to_field(e.raw));
                return false;
            }
            MilterStats::add(filter_stats().recipients_removed);
            log(Severity::Info, "{}: alias: removed {}", qid, to_field(e.raw));
        }
        for (const auto& target : e.targets) {
            std::string added = "<" + target + ">";
            if (smfi_addrcpt(ctx, added.data()) != MI_SUCCESS) {
                log(Severity::Error, "{}: milter: cannot add recipient {}: refusing with 451 4.3.0", qid,
                    to_field(added));
                return false;
            }
            MilterStats::add(filter_stats().recipients_added);
            log(Severity::Info, "{}: alias: added {} {}", qid, to_field(added), to_field(e.raw, "orig_to"));
        }
    }
    return true;
}

// Applies the plan's header edits; false (logged) when libmilter refuses one.
bool apply_header_edits(SMFICTX* ctx, const Session& s, const std::vector<HeaderEdit>& edits, const std::string& qid) {
    std::size_t removed = 0;
    for (const auto& edit : edits) {
        if (!apply_header_edit(ctx, edit)) {
            log(Severity::Error, "{}: milter: cannot edit header {}: refusing with 451 4.3.0", qid,
                printable(edit.name));
            return false;
        }
        if (edit.kind == HeaderEdit::Kind::Delete) ++removed;
    }
    MilterStats::add(filter_stats().headers_removed, s.trusted ? 0 : removed);
    if (removed > 0)
        log(s.trusted ? Severity::Debug : Severity::Info, "{}: removed {} {}* header(s) from {} client={}", qid,
            removed, s.settings().header_prefix, s.trusted ? "trusted" : "untrusted", s.client);
    return true;
}

sfsistat end_of_message(SMFICTX* ctx, Session& s) {
    const Settings& settings = s.settings();
    const std::string qid = queue_id(ctx);
    const MessageFacts facts{s.trusted, s.client, s.headers, s.recipients, s.recipients_dropped};
    MessagePlan plan;
    {
        auto lease = s.runtime->pool.checkout();
        plan = plan_message(settings, lease.directory(), facts);
    }
    for (const auto& n : plan.notes) log(n.severity, "{}: {}", qid, n.text);
    if (plan.directory_tempfail) MilterStats::add(filter_stats().directory_tempfails);
    if (plan.loop_released) MilterStats::add(filter_stats().loops_released);
    if (plan.refusal) return refuse(ctx, *plan.refusal);

    if (!apply_header_edits(ctx, s, plan.header_edits, qid) || !apply_expansions(ctx, plan.expansions, qid))
        return refuse(ctx, internal_reply());
    log(Severity::Debug, "{}: {}: {} from {} client={}", qid, settings.header_prefix + "Route", plan.route,
        s.trusted ? "trusted" : "untrusted", s.client);
    MilterStats::add(filter_stats().messages_accepted);
    return SMFIS_CONTINUE;
}

// ------------------------------------------------------------ callbacks

constexpr unsigned long wanted_steps = SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NOBODY |
                                       SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_RCPT | SMFIP_NR_HDR;

// Runs a callback's body; an exception is logged and answered with `fallback`.
template <class Body>
sfsistat guarded(const char* stage, sfsistat fallback, Body body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        log(Severity::Error, "milter: {}: {}", stage, e.what());
    }
    return fallback;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    return guarded("negotiate", SMFIS_REJECT, [&]() -> sfsistat {
        Session* s = session_of(ctx);
        if (s == nullptr) s = make_session(ctx);
        if (s == nullptr) {
            log(Severity::Error, "milter: negotiate: no configuration");
            return SMFIS_REJECT;
        }
        unsigned long needed = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
        if (s->settings().expand_aliases) needed |= SMFIF_ADDRCPT | SMFIF_DELRCPT;
        if ((f0 & needed) != needed) {
            log(Severity::Error,
                "milter: the MTA does not offer the header and recipient actions needed (0x{:x} of 0x{:x})", f0,
                needed);
            return SMFIS_REJECT;
        }
        *pf0 = needed | (f0 & SMFIF_SETSYMLIST);
        *pf1 = wanted_steps & f1;
        *pf2 = 0;
        *pf3 = 0;
        s->protocol = *pf1;
        if ((f0 & SMFIF_SETSYMLIST) != 0) {
            char connect_macros[] = "{client_addr}";
            char eom_macros[] = "i";
            if (smfi_setsymlist(ctx, SMFIM_CONNECT, connect_macros) != MI_SUCCESS ||
                smfi_setsymlist(ctx, SMFIM_EOM, eom_macros) != MI_SUCCESS)
                log(Severity::Warning, "milter: negotiate: cannot ask for the {{client_addr}} and i macros");
        }
        return SMFIS_CONTINUE;
    });
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* hostaddr) {
    Session* s = session_of(ctx);
    if (s == nullptr) {
        // An MTA that does not negotiate: no "no reply" stages either.
        s = make_session(ctx);
        if (s == nullptr) {
            log(Severity::Error, "milter: connect: no configuration");
            return SMFIS_TEMPFAIL;
        }
    }
    MilterStats::add(filter_stats().connections);
    s->trusted = false;  // also when what follows fails: untrusted is the safe side
    return guarded("connect", carry_on(s, SMFIP_NR_CONN), [&]() -> sfsistat {
        Peer peer = Peer::from_connect(hostaddr, symbol(ctx, "{client_addr}"));
        s->trusted = peer.trusted_by(s->settings().trusted_networks);
        // Postfix passes "[addr]" as the name of a client without one: log it
        // as Postfix does, "unknown[addr]".
        std::string_view name = hostname != nullptr ? hostname : "";
        if (name.empty() || name.front() == '[') name = "unknown";
        s->client = fmt::format("{}[{}]{}", printable(name, 255), peer.address ? peer.address->to_string() : "unknown",
                                peer.local_submission ? " (local submission)" : "");
        return carry_on(s, SMFIP_NR_CONN);
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    Session* s = session_of(ctx);
    if (s == nullptr) return SMFIS_TEMPFAIL;
    if (argv != nullptr && argv[0] != nullptr) {
        if (s->recipients.size() < max_recipients) s->recipients.emplace_back(argv[0]);
        else ++s->recipients_dropped;
    }
    return carry_on(s, SMFIP_NR_RCPT);
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    Session* s = session_of(ctx);
    if (s == nullptr) return SMFIS_TEMPFAIL;
    s->headers.add(name != nullptr ? name : "", value != nullptr ? value : "");
    return carry_on(s, SMFIP_NR_HDR);
}

sfsistat on_eom(SMFICTX* ctx) {
    Session* s = session_of(ctx);
    if (s == nullptr) return SMFIS_TEMPFAIL;
    sfsistat status = SMFIS_TEMPFAIL;
    try {
        status = end_of_message(ctx, *s);
    } catch (const std::exception& e) {
        log(Severity::Error, "milter: end of message: {}: refusing with 451 4.3.0", e.what());
        status = refuse(ctx, internal_reply());
    }
    s->reset_message();
    return status;
}

sfsistat on_abort(SMFICTX* ctx) {
    if (Session* s = session_of(ctx)) s->reset_message();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    std::unique_ptr<Session> s(session_of(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

char filter_name[] = "unitmilter";

}  // namespace

MilterStats& filter_stats() noexcept {
    static MilterStats stats;
    return stats;
}

void tick_idle_readers() noexcept {
    if (auto runtime = current_runtime()) runtime->pool.tick_idle();
}

void install_settings(std::shared_ptr<const Settings> settings) {
    Current& c = current();
    std::shared_ptr<ValidationCache> validation;
    {
        std::lock_guard lock(c.mutex);
        if (!c.validation)
            c.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background,
                                                             checked_files_in(settings->cache_directory));
        validation = c.validation;
    }
    auto runtime = std::make_shared<Runtime>(std::move(settings), std::move(validation));
    std::lock_guard lock(c.mutex);
    c.runtime = std::move(runtime);
}

smfiDesc filter_description() noexcept {
    smfiDesc d{};
    d.xxfi_name = filter_name;
    d.xxfi_version = SMFI_VERSION;
    d.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_SETSYMLIST;
    d.xxfi_connect = on_connect;
    d.xxfi_envrcpt = on_envrcpt;
    d.xxfi_header = on_header;
    d.xxfi_eom = on_eom;
    d.xxfi_abort = on_abort;
    d.xxfi_close = on_close;
    d.xxfi_negotiate = on_negotiate;
    return d;
}

}  // namespace unit::milter
