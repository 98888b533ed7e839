#include "policyd/conversation.hpp"

#include <fmt/format.h>

#include <chrono>

#include "common/log.hpp"

namespace unit::policyd {

using common::printable;
using common::Severity;

namespace {

// Times one request into the latency histogram.
class Timer {
public:
    explicit Timer(Stats& stats) : stats_(stats), start_(std::chrono::steady_clock::now()) {}
    ~Timer() {
        auto elapsed = std::chrono::steady_clock::now() - start_;
        stats_.latency.record(
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
    }

private:
    Stats& stats_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace

// ------------------------------------------------------------ policy

PolicyConversation::PolicyConversation(Worker& worker)
    : worker_(worker), parser_(PolicyLimits{worker.settings().max_line, worker.settings().max_request}) {}

bool PolicyConversation::feed(std::string_view in, std::string& out) {
    parser_.feed(in);
    while (auto request = parser_.next()) {
        out += "action=";
        out += answer(*request);
        out += "\n\n";
    }
    if (parser_.failed()) worker_.stats().protocol_errors++;
    return !parser_.failed();
}

std::string_view PolicyConversation::answer(const PolicyRequest& request) {
    Timer timer(worker_.stats());
    worker_.stats().policy_requests++;
    bool recipient_state = request.protocol_state == "RCPT" || request.protocol_state == "VRFY";
    // Every client value of a log line below goes through printable().
    const std::string state = request.protocol_state.empty() ? "(no state)" : printable(request.protocol_state, 32);
    if (!recipient_state || request.recipient.empty()) {
        common::log(Severity::Debug, "policy: {} without a recipient check: DUNNO", state);
        worker_.stats().count(VerdictKind::NotRcpt);
        return "DUNNO";
    }
    Resolution r = worker_.resolve(request.recipient);
    PolicyAction action = policy_action(r, worker_.settings().answers);
    if (r.outcome == Outcome::Malformed) {
        // The policy is the only recipient check at RCPT (no
        // relay_recipient_maps): a malformed address in a served domain is
        // refused here, or it would be accepted and bounce.
        if (auto domain = domain_part(request.recipient); !domain.empty()) {
            DomainResolution d = worker_.resolve_domain(domain);
            action = malformed_action(d, worker_.settings().answers);
            if (d.outcome == DomainOutcome::Tempfail) {
                r.cause = d.cause;
                r.reason = d.reason;
            }
        }
    }
    worker_.stats().count(action.kind);
    // In Postfix's shape and with its field names, so that its users' greps
    // find them: "QUEUEID: reject: RCPT from name[addr]: REPLY; from=<s> to=<r>".
    const std::string queue = request.queue_id.empty() ? "NOQUEUE" : printable(request.queue_id, 64);
    // Built only for a line that is written: a DUNNO without debug is the common answer.
    auto client = [&] {
        return fmt::format("{}[{}]", request.client_name.empty() ? "unknown" : printable(request.client_name, 255),
                           request.client_address.empty() ? "unknown" : printable(request.client_address, 64));
    };
    auto envelope = [&] {
        return fmt::format("from=<{}> to=<{}>", printable(request.sender), printable(request.recipient));
    };
    switch (action.kind) {
    case VerdictKind::Dunno:
    case VerdictKind::NotRcpt:
        if (common::debug_logging())
            common::log(Severity::Debug, "{}: dunno: {} from {}: {}; {}", queue, state, client(), to_string(r.outcome),
                        envelope());
        break;
    case VerdictKind::Reject:
    case VerdictKind::Defer:
        common::log(Severity::Info, "{}: reject: {} from {}: {}{}{}; {}", queue, state, client(), action.text,
                    r.reason.empty() ? "" : "; ", printable(r.reason), envelope());
        break;
    case VerdictKind::Tempfail:
        common::log(Severity::Warning, "{}: defer: {} from {}: {}: {}: {}; {}", queue, state, client(), action.text,
                    to_string(r.cause), printable(r.reason), envelope());
        break;
    }
    return action.text;
}

// ------------------------------------------------------------ socketmap

SocketmapConversation::SocketmapConversation(Worker& worker)
    : worker_(worker), decoder_(worker.settings().max_request) {}

bool SocketmapConversation::feed(std::string_view in, std::string& out) {
    decoder_.feed(in);
    while (auto request = decoder_.next()) common::append_netstring(out, answer(*request));
    if (decoder_.failed()) worker_.stats().protocol_errors++;
    return !decoder_.failed();
}

std::string SocketmapConversation::answer(std::string_view request) {
    Timer timer(worker_.stats());
    worker_.stats().socketmap_requests++;
    MapReply reply;
    std::string cause;
    auto space = request.find(' ');
    auto map = parse_map_name(request.substr(0, space));
    std::string_view key = space == std::string_view::npos ? std::string_view{} : request.substr(space + 1);
    if (!map) {
        reply = unknown_map_reply();
    } else if (key.empty() || key == "*") {
        // Postfix probes transport_maps with "*" at start-up and every ~30 s.
        reply = no_key_reply();
    } else if (*map == MapName::Domain) {
        reply = domain_reply(worker_.resolve_domain(key));
    } else if (is_partial_key(key)) {
        // "user", "@domain", "domain", ".domain": none names a mailbox
        // (catch-all aliases were applied to the full address). Postfix
        // tries these forms on fixed tables only, never on a socketmap; they
        // come from postmap -q, or from virtual_alias_domains left at its
        // default. Answered as a malformed address would be, without a
        // lookup, and counted apart so outcome_malformed keeps meaning bad
        // input.
        worker_.stats().socketmap_partial_keys++;
        Resolution partial;
        partial.outcome = Outcome::Malformed;
        reply = map_reply(*map, partial, worker_.settings().answers);
    } else {
        Resolution r = worker_.resolve(key);
        reply = map_reply(*map, r, worker_.settings().answers);
        if (r.outcome == Outcome::Tempfail) {
            cause = fmt::format("cause {}", to_string(r.cause));
            // answers.hpp: a data error's reason is not in the reply.
            if (r.cause == TempfailCause::BadData) cause += ": " + printable(r.reason);
        }
    }
    worker_.stats().count(reply.kind);
    // A tempfail's cause and reason are logged here, once: the reply may
    // leave the reason out (a bad value of the database is never sent).
    // A recipient's lookup names it as Postfix does, "NAME to=<KEY>"; a
    // domain's, an unknown map's or an empty key's is shown as it came.
    const std::string what = map && *map != MapName::Domain && !key.empty() && key != "*"
                                 ? fmt::format("{} to=<{}>", request.substr(0, space), printable(key.substr(0, 200)))
                                 : printable(request.substr(0, 200));
    if (reply.kind == ReplyKind::Temp || reply.kind == ReplyKind::Perm)
        common::log(Severity::Warning, "socketmap: {}: {}{}{}", what, reply.text, cause.empty() ? "" : "; ", cause);
    else common::log(Severity::Debug, "socketmap: {}: {}", what, reply.text);
    return std::move(reply.text);
}

}  // namespace unit::policyd
