// answers.cpp: DESIGN §5 as code, one function per protocol edge.
#include "policyd/answers.hpp"

#include <cctype>

#include "common/netstring.hpp"

namespace unit::policyd {

namespace {

constexpr std::string_view too_long = "TEMP reply too long";
constexpr std::string_view default_reason = "directory temporarily unavailable";
constexpr std::string_view bad_data_reason = "bad data in the directory for this address";

// A reason from the resolver or the database: no control character (CR, LF,
// NUL, ...) ever reaches a peer, each becomes a space; at most
// max_reply_text bytes, cut on a UTF-8 character boundary.
std::string sanitise(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) c = ' ';
    }
    if (out.size() > max_reply_text) {
        std::size_t cut = max_reply_text;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
        out.resize(cut);
    }
    return out;
}

// A reply never exceeds what Postfix accepts; an oversized answer becomes a
// temporary error rather than a silently truncated route or address list.
MapReply capped(MapReply reply) {
    if (reply.text.size() > common::max_socketmap_reply) return {ReplyKind::Temp, std::string(too_long)};
    return reply;
}

MapReply ok(std::string_view data) {
    std::string text = "OK ";
    text += data;
    return {ReplyKind::Ok, std::move(text)};
}

MapReply not_found() { return {ReplyKind::NotFound, "NOTFOUND "}; }

MapReply perm(std::string_view reason) { return {ReplyKind::Perm, "PERM " + std::string(reason)}; }

MapReply temp(std::string_view reason) {
    return {ReplyKind::Temp, "TEMP " + sanitise(reason.empty() ? default_reason : reason)};
}

// The TEMP reply for a Resolution that cannot be answered. The reason of a
// data error may quote a value of the database (a bad nexthop, an alias
// target with a comma), which must never reach Postfix: the reply only says
// what kind of failure it is, and the daemon logs the reason.
MapReply temp(const Resolution& r) {
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
            if (!t.destination || t.destination->mailbox.state != MailboxState::Suspended)
                return AliasState::Deliverable;
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
MapReply dead_alias(const Resolution& r) { return r.doubt.empty() ? not_found() : temp(r.doubt); }

// Where mail is held while it cannot go to the mailbox's unit: a route
// that names no reachable place (held_nexthop), so that a flush, which
// overrides defer_transports, defers it again instead of sending it.
std::string hold(const Destination& d, const AnswerSettings& s) {
    if (s.hold_mode == HoldMode::Defer) return std::string(hold_defer_route);
    return s.hold_transport + ':' + held_nexthop(d.unit.name);
}

// Whether this host holds a mailbox's mail (its route is hold()): while it
// is moving or suspended, or its unit is down, unless it is this unit's own
// (s.unit, empty on an MX). A disabled mailbox has no route at all.
bool route_held(const Destination& d, const AnswerSettings& s) noexcept {
    if (d.mailbox.state == MailboxState::Disabled) return false;
    if (d.mailbox.state != MailboxState::Active) return true;
    return d.mailbox.unit != s.unit && d.unit.state == UnitState::Down;
}

// transportmx: the unit's route, or held.
MapReply mx_route(const Destination& d, const AnswerSettings& s) {
    if (d.mailbox.state == MailboxState::Disabled) return not_found();
    if (route_held(d, s)) return ok(hold(d, s));
    return ok(d.unit.route());
}

// transportunit on unit s.unit: local delivery, back to the MX, or held.
MapReply unit_route(const Destination& d, const AnswerSettings& s) {
    if (d.mailbox.state == MailboxState::Disabled) return not_found();
    if (route_held(d, s)) return ok(hold(d, s));
    if (d.mailbox.unit == s.unit) return ok(s.local_transport);
    // Never a bare "OK " (settings require mx_relay with unit).
    if (s.mx_relay.empty()) return perm("transportunit needs --mx-relay");
    return ok(s.mx_relay);
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
MapReply transport(const Resolution& r, const AnswerSettings& s, Route route) {
    switch (r.outcome) {
    case Outcome::Mailbox:
        if (!r.destination) return temp("mailbox without a destination");
        return route(*r.destination, s);
    case Outcome::Alias:
        if (const Destination* d = self_mailbox(r)) return route(*d, s);
        if (dead(alias_state(r))) return dead_alias(r);
        return not_found();
    case Outcome::Tempfail:
    case Outcome::Unconfirmed: return temp(r);
    case Outcome::Disabled:
    case Outcome::Unknown:
    case Outcome::Foreign:
    case Outcome::Malformed: break;
    }
    return not_found();
}

MapReply recipient(const Resolution& r) {
    switch (r.outcome) {
    case Outcome::Mailbox: return ok(r.address);
    case Outcome::Alias: {
        const auto state = alias_state(r);
        if (state == AliasState::Empty) return temp("alias without targets");
        if (dead(state)) return dead_alias(r);
        return ok(r.address);
    }
    case Outcome::Tempfail:
    case Outcome::Unconfirmed: return temp(r);
    case Outcome::Disabled:
    case Outcome::Unknown:
    case Outcome::Foreign:
    case Outcome::Malformed: break;
    }
    return not_found();
}

MapReply alias(const Resolution& r) {
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
        return {ReplyKind::Ok, std::move(reply)};
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
    case Outcome::Malformed: break;
    }
    return not_found();
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

namespace {

constexpr PolicyAction dunno{VerdictKind::Dunno, "DUNNO"};

// A configured refusal: its kind follows its code (a 4xx defers).
PolicyAction refusal(const std::string& text) noexcept {
    return {text.front() == '5' ? VerdictKind::Reject : VerdictKind::Defer, text};
}

PolicyAction tempfail(const ReplyTexts& t) noexcept { return {VerdictKind::Tempfail, t.tempfail}; }

// In hold_mode defer, whether the recipient's own route (what its transport
// map answers on this host) is held. smtpd's resolver asks no transport map
// (examples/mx/master.cf), so the policy service says the 450 that smtpd
// used to derive from a "retry:" route: the sender keeps the mail.
bool held_for_sender(const Resolution& r, const AnswerSettings& s) {
    if (s.hold_mode != HoldMode::Defer) return false;
    const Destination* d = r.outcome == Outcome::Alias ? self_mailbox(r) : r.destination ? &*r.destination : nullptr;
    return d != nullptr && route_held(*d, s);
}

constexpr PolicyAction held{VerdictKind::Defer, hold_defer_reply};

}  // namespace

PolicyAction policy_action(const Resolution& r, const AnswerSettings& settings) {
    const ReplyTexts& t = settings.texts;
    switch (r.outcome) {
    case Outcome::Mailbox:
        if (!r.destination) return tempfail(t);
        switch (r.destination->mailbox.state) {
        case MailboxState::Active:
        case MailboxState::Moving: return held_for_sender(r, settings) ? held : dunno;
        case MailboxState::Suspended: return refusal(t.suspended);
        case MailboxState::Disabled: return refusal(t.disabled);
        }
        return tempfail(t);
    case Outcome::Disabled: return refusal(t.disabled);
    case Outcome::Unknown: return refusal(t.unknown);
    case Outcome::Unconfirmed: return refusal(t.unconfirmed);
    case Outcome::Tempfail: return tempfail(t);
    case Outcome::Alias:
        // What its targets would get: a 5xx only when none can receive mail
        // and this snapshot's negatives are certain.
        switch (alias_state(r)) {
        case AliasState::Deliverable: return held_for_sender(r, settings) ? held : dunno;
        case AliasState::Suspended: return refusal(t.suspended);
        case AliasState::Empty: return tempfail(t);
        case AliasState::Disabled: return refusal(r.doubt.empty() ? t.disabled : t.unconfirmed);
        case AliasState::Unknown: return refusal(r.doubt.empty() ? t.unknown : t.unconfirmed);
        }
        return tempfail(t);
    case Outcome::Foreign:
    case Outcome::Malformed:  // Postfix's own checks decide
        return dunno;
    }
    return tempfail(t);
}

PolicyAction malformed_action(const DomainResolution& d, const AnswerSettings& settings) {
    switch (d.outcome) {
    case DomainOutcome::Served: return refusal(settings.texts.unknown);
    case DomainOutcome::Tempfail: return tempfail(settings.texts);
    case DomainOutcome::NotServed:
    case DomainOutcome::Malformed: return dunno;
    }
    return tempfail(settings.texts);
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

MapReply map_reply(MapName map, const Resolution& r, const AnswerSettings& settings) {
    switch (map) {
    case MapName::Recipient: return capped(recipient(r));
    case MapName::TransportMx: return capped(transport(r, settings, mx_route));
    case MapName::TransportUnit:
        if (settings.unit.empty()) return perm("transportunit needs --unit");
        return capped(transport(r, settings, unit_route));
    case MapName::Alias: return capped(alias(r));
    case MapName::Domain:
        // The domain table is answered by domain_reply(); a Resolution is
        // the wrong input (a caller's bug), but a fault still stays a TEMP.
        if (r.outcome == Outcome::Tempfail || r.outcome == Outcome::Unconfirmed) return temp(r);
        return perm("domain map is answered by domain_reply");
    }
    return temp("unknown map");
}

MapReply domain_reply(const DomainResolution& d) {
    switch (d.outcome) {
    case DomainOutcome::Served: return capped(ok(d.domain));
    case DomainOutcome::Tempfail: return temp(d.reason);
    case DomainOutcome::NotServed:
    case DomainOutcome::Malformed: break;
    }
    return not_found();
}

MapReply unknown_map_reply() { return perm("unknown map name"); }

MapReply no_key_reply() { return not_found(); }

}  // namespace unit::policyd
