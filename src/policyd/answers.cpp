// answers.cpp: DESIGN §5 as code, one function per protocol edge.
#include "policyd/answers.hpp"

#include <cctype>

#include "common/netstring.hpp"

namespace unit::policyd {

namespace {

constexpr std::size_t max_text = 200;  // bytes of a reason or an action text
constexpr std::string_view not_found = "NOTFOUND ";
constexpr std::string_view too_long = "TEMP reply too long";
constexpr std::string_view default_reason = "directory temporarily unavailable";
constexpr std::string_view bad_data_reason = "bad data in the directory for this address";

// No control character (CR, LF, NUL, ...) ever reaches a peer: each becomes a
// space. At most max_text bytes, cut on a UTF-8 character boundary.
std::string sanitise(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) c = ' ';
    }
    if (out.size() > max_text) {
        std::size_t cut = max_text;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
        out.resize(cut);
    }
    return out;
}

// A reply never exceeds what Postfix accepts; an oversized answer becomes a
// temporary error rather than a silently truncated route or address list.
std::string capped(std::string reply) {
    if (reply.size() > common::max_socketmap_reply) return std::string(too_long);
    return reply;
}

std::string ok(std::string_view data) {
    std::string reply = "OK ";
    reply += data;
    return reply;
}

std::string temp(std::string_view reason) {
    return "TEMP " + sanitise(reason.empty() ? default_reason : reason);
}

// The TEMP reply for a Resolution that cannot be answered. The reason of a
// data error may quote a value of the database (a bad nexthop, an alias
// target with a comma), which must never reach Postfix: the reply only says
// what kind of failure it is, and the daemon logs the reason.
std::string temp(const Resolution& r) {
    if (r.outcome == Outcome::Tempfail && r.cause == TempfailCause::BadData) return temp(bad_data_reason);
    return temp(r.reason);
}

// An alias answers for its targets (DESIGN §5): what the best of them allows.
// A mailbox that is moving or on a down unit is deliverable (its mail is
// held), and so is an external address.
enum class AliasState { Deliverable, Suspended, Disabled, Unknown, Empty };

AliasState alias_state(const Resolution& r) noexcept {
    if (r.targets.empty()) return AliasState::Empty;
    bool suspended = false, all_disabled = true;
    for (const auto& t : r.targets) {
        switch (t.kind) {
        case AliasTarget::Kind::External: return AliasState::Deliverable;
        case AliasTarget::Kind::Mailbox:
            if (!t.destination || t.destination->mailbox.state != MailboxState::Suspended) return AliasState::Deliverable;
            suspended = true;
            all_disabled = false;
            break;
        case AliasTarget::Kind::Unknown: all_disabled = false; break;
        case AliasTarget::Kind::Disabled: break;
        }
    }
    if (suspended) return AliasState::Suspended;
    return all_disabled ? AliasState::Disabled : AliasState::Unknown;
}

// Whether no target of the alias receives mail, now or once a suspension ends.
bool dead(AliasState state) noexcept { return state == AliasState::Disabled || state == AliasState::Unknown; }

// The map reply of a dead alias: what its targets would get, NOTFOUND; or,
// when this snapshot's negatives are in doubt, TEMP (a target may exist in
// the newer file, and a NOTFOUND from the alias map would be final).
std::string dead_alias(const Resolution& r) {
    return r.doubt.empty() ? std::string(not_found) : temp(r.doubt);
}

// Where mail is held while it cannot go to the mailbox's unit: a route
// that names no reachable place (held_nexthop), so that a flush, which
// overrides defer_transports, defers it again instead of sending it.
std::string hold(const Destination& d, const AnswerSettings& s) {
    if (s.hold_mode == HoldMode::Defer) return "retry:" + sanitise(s.hold_defer_text);
    return s.hold_transport + ':' + held_nexthop(d.unit.name);
}

// transportmx: the unit's route, or held.
std::string mx_route(const Destination& d, const AnswerSettings& s) {
    if (d.mailbox.state == MailboxState::Disabled) return std::string(not_found);
    if (d.mailbox.state == MailboxState::Active && d.unit.state != UnitState::Down) return ok(d.unit.route());
    return ok(hold(d, s));
}

// transportunit on unit s.unit: local delivery, back to the MX, or held.
std::string unit_route(const Destination& d, const AnswerSettings& s) {
    if (d.mailbox.state == MailboxState::Disabled) return std::string(not_found);
    if (d.mailbox.state == MailboxState::Active) {
        if (d.mailbox.unit == s.unit) return ok(s.local_transport);
        if (d.unit.state != UnitState::Down) {
            // Never a bare "OK " (settings require mx_relay with unit).
            if (s.mx_relay.empty()) return "PERM transportunit needs --mx-relay";
            return ok(s.mx_relay);
        }
    }
    return ok(hold(d, s));
}

// An alias reaches the transport maps only when it lists itself (Postfix
// rewrites every other alias through the alias map first): then it is the
// mailbox of that name.
const Destination* self_mailbox(const Resolution& r) noexcept {
    for (const auto& t : r.targets)
        if (t.address == r.address)
            return t.kind == AliasTarget::Kind::Mailbox && t.destination ? &*t.destination : nullptr;
    return nullptr;
}

template <class Route>
std::string transport(const Resolution& r, const AnswerSettings& s, Route route) {
    switch (r.outcome) {
    case Outcome::Mailbox:
        if (!r.destination) return temp("mailbox without a destination");
        return route(*r.destination, s);
    case Outcome::Alias:
        if (const Destination* d = self_mailbox(r)) return route(*d, s);
        if (dead(alias_state(r))) return dead_alias(r);
        return std::string(not_found);
    case Outcome::Tempfail:
    case Outcome::Unconfirmed:
        return temp(r);
    case Outcome::Disabled:
    case Outcome::Unknown:
    case Outcome::Foreign:
    case Outcome::Malformed:
        break;
    }
    return std::string(not_found);
}

std::string recipient(const Resolution& r) {
    switch (r.outcome) {
    case Outcome::Mailbox:
        return ok(r.address);
    case Outcome::Alias: {
        const auto state = alias_state(r);
        if (state == AliasState::Empty) return temp("alias without targets");
        if (dead(state)) return dead_alias(r);
        return ok(r.address);
    }
    case Outcome::Tempfail:
    case Outcome::Unconfirmed:
        return temp(r);
    case Outcome::Disabled:
    case Outcome::Unknown:
    case Outcome::Foreign:
    case Outcome::Malformed:
        break;
    }
    return std::string(not_found);
}

std::string alias(const Resolution& r) {
    switch (r.outcome) {
    case Outcome::Alias: {
        const auto state = alias_state(r);
        if (state == AliasState::Empty) return temp("alias without targets");
        if (dead(state)) return dead_alias(r);
        // A disabled or unknown target would bounce after the message was
        // accepted for the alias: it is left out. In doubt it stays, since
        // it may exist in the newer file (its transport lookup answers TEMP
        // until the doubt is over, so the mail waits in the queue).
        std::string reply = "OK ";
        bool first = true;
        for (const auto& t : r.targets) {
            bool receives = t.kind == AliasTarget::Kind::Mailbox || t.kind == AliasTarget::Kind::External;
            if (!receives && r.doubt.empty()) continue;
            if (!first) reply += ',';
            first = false;
            reply += t.address;
            if (reply.size() > common::max_socketmap_reply) break;  // capped() answers
        }
        return reply;
    }
    case Outcome::Tempfail:
    case Outcome::Unconfirmed:
        // Not "no alias": the alias may be newer than this replica, and
        // cleanup(8) expands aliases once, so a NOTFOUND would be final.
        return temp(r);
    case Outcome::Mailbox:
    case Outcome::Unknown:
    case Outcome::Foreign:
    case Outcome::Disabled:
    case Outcome::Malformed:
        break;
    }
    return std::string(not_found);
}

}  // namespace

std::string held_nexthop(std::string_view unit) {
    std::string out = "unix:";
    out += held_socket_prefix;
    for (char c : unit) {
        const auto byte = static_cast<unsigned char>(c);
        out += std::isalnum(byte) || c == '-' || c == '_' || c == '.' ? c : '_';
    }
    return out;
}

std::string policy_action(const Resolution& r, const AnswerSettings& settings) {
    const ReplyTexts& t = settings.texts;
    switch (r.outcome) {
    case Outcome::Mailbox:
        if (!r.destination) return sanitise(t.tempfail);
        switch (r.destination->mailbox.state) {
        case MailboxState::Active:
        case MailboxState::Moving:
            return "DUNNO";
        case MailboxState::Suspended:
            return sanitise(t.suspended);
        case MailboxState::Disabled:
            return sanitise(t.disabled);
        }
        return sanitise(t.tempfail);
    case Outcome::Disabled:
        return sanitise(t.disabled);
    case Outcome::Unknown:
        return sanitise(t.unknown);
    case Outcome::Unconfirmed:
        return sanitise(t.unconfirmed);
    case Outcome::Tempfail:
        return sanitise(t.tempfail);
    case Outcome::Alias:
        // What its targets would get: a 5xx only when none can receive mail
        // and this snapshot's negatives are certain.
        switch (alias_state(r)) {
        case AliasState::Deliverable: return "DUNNO";
        case AliasState::Suspended: return sanitise(t.suspended);
        case AliasState::Empty: return sanitise(t.tempfail);
        case AliasState::Disabled: return sanitise(r.doubt.empty() ? t.disabled : t.unconfirmed);
        case AliasState::Unknown: return sanitise(r.doubt.empty() ? t.unknown : t.unconfirmed);
        }
        return sanitise(t.tempfail);
    case Outcome::Foreign:
    case Outcome::Malformed:  // Postfix's own checks decide
        return "DUNNO";
    }
    return sanitise(t.tempfail);
}

std::string malformed_action(const DomainResolution& d, const AnswerSettings& settings) {
    switch (d.outcome) {
    case DomainOutcome::Served: return sanitise(settings.texts.unknown);
    case DomainOutcome::Tempfail: return sanitise(settings.texts.tempfail);
    case DomainOutcome::NotServed:
    case DomainOutcome::Malformed: return "DUNNO";
    }
    return sanitise(settings.texts.tempfail);
}

std::string_view domain_part(std::string_view address) noexcept {
    const auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

bool is_partial_key(std::string_view key) noexcept {
    return key.empty() || key.front() == '@' || key.find('@') == std::string_view::npos;
}

std::optional<MapName> parse_map_name(std::string_view name) noexcept {
    if (name == "domain") return MapName::Domain;
    if (name == "recipient") return MapName::Recipient;
    if (name == "transportmx") return MapName::TransportMx;
    if (name == "transportunit") return MapName::TransportUnit;
    if (name == "alias") return MapName::Alias;
    return std::nullopt;
}

std::string map_reply(MapName map, const Resolution& r, const AnswerSettings& settings) {
    switch (map) {
    case MapName::Recipient:
        return capped(recipient(r));
    case MapName::TransportMx:
        return capped(transport(r, settings, mx_route));
    case MapName::TransportUnit:
        if (settings.unit.empty()) return "PERM transportunit needs --unit";
        return capped(transport(r, settings, unit_route));
    case MapName::Alias:
        return capped(alias(r));
    case MapName::Domain:
        // The domain table is answered by domain_reply(); a Resolution is
        // the wrong input (a caller's bug), but a fault still stays a TEMP.
        if (r.outcome == Outcome::Tempfail || r.outcome == Outcome::Unconfirmed) return temp(r);
        return "PERM domain map is answered by domain_reply";
    }
    return temp("unknown map");
}

std::string domain_reply(const DomainResolution& d) {
    switch (d.outcome) {
    case DomainOutcome::Served:
        return capped(ok(d.domain));
    case DomainOutcome::Tempfail:
        return temp(d.reason);
    case DomainOutcome::NotServed:
    case DomainOutcome::Malformed:
        break;
    }
    return std::string(not_found);
}

}  // namespace unit::policyd
