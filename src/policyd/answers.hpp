// answers.hpp: what unitpolicy answers, as pure functions of a Resolution
// (DESIGN §5). Each protocol maps the resolver's outcome here, once:
// policy_action() for the policy delegation protocol, map_reply() for the
// socketmap tables. Nothing here does I/O, so the whole table of §5 is
// tested without sockets.
//
// The rule that matters most: an outcome that is not certain (Tempfail,
// Unconfirmed, or a negative while Resolution::doubt is set) never yields a
// 5xx or a NOTFOUND.
//
// An alias answers for its targets. It is deliverable when one target is an
// external address or a mailbox that receives mail (active, moving, on a
// down unit: held); otherwise it is suspended (a suspended target), or dead
// (each target disabled or unknown). A dead alias is refused
// like its targets: the disabled reply when all are disabled, else the
// unknown reply, and NOTFOUND in every map, so that Postfix never accepts
// mail for it only to bounce it; in doubt, the unconfirmed reply and TEMP.
// The alias map lists only the targets that receive mail (the others would
// bounce after acceptance), all of them in doubt.
//
// A Tempfail of cause BadData answers TEMP without its reason, which may
// quote a bad value of the database; the daemon logs the reason.
//
// Each answer carries its kind beside its text, so that callers count, log
// and test kinds without parsing our own replies back. The configured reply
// texts are checked once, when the settings are loaded (settings.cpp: the
// shape "CODE X.Y.Z text", 4xx where a fault or doubt answers, no control
// character, at most max_reply_text bytes); only texts that come from the
// database or a resolver's reason are bounded and cleaned per answer.
// Pure functions, thread-safe. Logs nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "unit/resolver.hpp"

namespace unit::policyd {

// The longest reason or action text sent to Postfix, in bytes.
inline constexpr std::size_t max_reply_text = 200;

// The reply texts (configurable): "CODE X.Y.Z text", as in access(5).
struct ReplyTexts {
    std::string unknown = "550 5.1.1 User unknown";
    std::string unconfirmed = "450 4.1.1 Recipient not confirmed by an up-to-date directory, try again later";
    std::string disabled = "550 5.2.1 Mailbox disabled";
    std::string suspended = "450 4.2.1 Mailbox temporarily unavailable";
    std::string tempfail = "451 4.3.0 Directory temporarily unavailable";
};

enum class HoldMode { Transport, Defer };

// The route of held mail in hold_mode defer: "retry:" and this text.
inline constexpr std::string_view hold_defer_route = "retry:4.2.1 Mailbox temporarily held";
// The policy answer at RCPT TO for a recipient whose route is held, in
// hold_mode defer: the 450 that smtpd gives a "retry:" route when its
// resolver asks the transport map (the examples' does not).
inline constexpr std::string_view hold_defer_reply = "450 4.2.1 Mailbox temporarily held";

struct AnswerSettings {
    ReplyTexts texts;
    std::string hold_transport = "unithold";  // an lmtp clone listed in defer_transports
    HoldMode hold_mode = HoldMode::Transport;
    std::string unit;                       // this host's unit; empty on an MX
    std::string local_transport = "local";  // own mailboxes on a unit
    std::string mx_relay;                   // everything else from a unit: "transport:nexthop"
};

// What a policy answer does: DUNNO (Postfix's own checks decide), a refusal
// (a configured 5xx, or a 4xx for a suspended or unconfirmed recipient), or
// the tempfail reply of a fault. NotRcpt is a request that asks no
// recipient check (counted apart; policy_action() never returns it).
enum class VerdictKind { Dunno, Reject, Defer, Tempfail, NotRcpt };

// A policy action: its kind, and its text, "DUNNO" or a reply such as
// "550 5.1.1 User unknown" (Postfix adds the recipient and "Recipient
// address rejected:" itself). The text points into the AnswerSettings it
// was made from, or is static: it lives as long as those settings.
struct PolicyAction {
    VerdictKind kind;
    std::string_view text;
};

// The policy action for a recipient at RCPT or VRFY.
PolicyAction policy_action(const Resolution& r, const AnswerSettings& settings);

// The policy action for a malformed address (one no directory can hold),
// given what the directory says of its domain part: the unknown reply in a
// served domain, where Postfix would otherwise accept it (the examples set
// no relay_recipient_maps) and bounce it later; the tempfail reply when the
// domain cannot be checked; DUNNO elsewhere (Postfix's relay control
// decides).
PolicyAction malformed_action(const DomainResolution& d, const AnswerSettings& settings);

// The text after the last '@' of an address as given ("" when none).
std::string_view domain_part(std::string_view address) noexcept;

// The nexthop of a held route: "unix:/dev/null/unitpolicy-held/UNIT", a
// UNIX socket under /dev/null, which can never exist (ENOTDIR; ENOENT in a
// chroot without /dev/null). Mail routed there by a flush (postqueue -f, -i, sendmail -q:
// each overrides defer_transports) is deferred again, never sent, never
// bounced; its delay reason then names held_socket_prefix and the unit.
// Characters of UNIT other than letters, digits, '-', '_', '.' become '_'.
inline constexpr std::string_view held_socket_prefix = "/dev/null/unitpolicy-held/";
std::string held_nexthop(std::string_view unit);

// A socketmap reply: its kind, and the payload it is sent as, "OK data",
// "NOTFOUND ", "TEMP reason" or "PERM reason" (the kind's word first);
// never longer than common::max_socketmap_reply.
enum class ReplyKind { Ok, NotFound, Temp, Perm };
struct MapReply {
    ReplyKind kind;
    std::string text;
};

enum class MapName { Domain, Recipient, TransportMx, TransportUnit, Alias };
std::optional<MapName> parse_map_name(std::string_view name) noexcept;

MapReply map_reply(MapName map, const Resolution& r, const AnswerSettings& settings);

MapReply domain_reply(const DomainResolution& d);

// The reply to a request that names no map this daemon serves, and to a
// key that can name no recipient (empty, or Postfix's "*" probe).
MapReply unknown_map_reply();
MapReply no_key_reply();

// Whether a key of an address table is one of the partial keys Postfix
// tries after the full address (virtual(5), transport(5), access(5)):
// "user", "@domain", "domain", ".domain". None names a mailbox.
bool is_partial_key(std::string_view key) noexcept;

}  // namespace unit::policyd
