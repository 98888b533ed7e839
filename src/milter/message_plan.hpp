// message_plan.hpp: unitmilter's end-of-message decision, without libmilter.
//
// plan_message() takes what the callbacks gathered about one message (the
// client's trust, the scan of its headers, its recipients as the MTA gave
// them) and asks the directory about the recipients; it returns either a
// refusal or the header edits, the alias expansions and the route value to
// stamp. The refusals, in the order they are decided:
//   1. an untrusted client's header flood (route_header.hpp): 550 5.7.1,
//      before any lookup;
//   2. a recipient the directory cannot answer for, when tempfail_action is
//      tempfail: 451 4.3.0 (with accept, the route leaves without it);
//   3. a trusted client's routing loop: 451 4.4.6, decided after the
//      lookups, since where the recipients go now (and this host's
//      generation) decides whether the loop is over;
//   4. an alias expansion past max_added_recipients: 451 4.3.0.
// Each note is a log line of the decision (without the queue id), in order.
// filter.cpp logs the notes, counts, and applies the plan through libmilter.
//
// Thread safety: a plan is computed on one thread; nothing here logs, counts
// or keeps state. Throws only what the resolver throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "milter/route_header.hpp"
#include "milter/settings.hpp"
#include "unit/resolver.hpp"

namespace unit::milter {

// The most recipients of one message the filter keeps (the others are left
// out of the route, with a warning), and the most an alias expansion may add.
inline constexpr std::size_t max_recipients = 10000;
inline constexpr std::size_t max_added_recipients = 1000;

// What the callbacks gathered about one message.
struct MessageFacts {
    bool trusted = false;
    std::string client;  // "name[addr]", for the notes
    const HeaderScan& headers;
    const std::vector<std::string>& recipients;  // as the MTA gave them, "<a@example.com>"
    std::size_t recipients_dropped = 0;          // past max_recipients, not in `recipients`
};

// An alias recipient replaced by its targets.
struct Expansion {
    std::string raw;                   // the recipient as given (smfi_delrcpt)
    bool keep = false;                 // the alias includes its own mailbox: not deleted
    std::vector<std::string> targets;  // to add, none already in the envelope
};

struct MessageNote {
    common::Severity severity;
    std::string text;
};

struct MessagePlan {
    std::optional<Reply> refusal;          // set: refuse the message with this, apply nothing
    std::vector<MessageNote> notes;        // the decision's log lines, in order
    bool directory_tempfail = false;       // the directory could not answer for a recipient
    bool loop_released = false;            // at max_hops, but the loop is over
    std::vector<HeaderEdit> header_edits;  // in the order they must be applied
    std::vector<Expansion> expansions;
    std::string route;  // the route header's value
};

MessagePlan plan_message(const Settings& settings, Directory& directory, const MessageFacts& facts);

// The replies of refusals 1, 3 and 5, and of a failure to apply a plan.
Reply directory_tempfail_reply();  // 451 4.3.0 Directory temporarily unavailable
Reply internal_reply();            // 451 4.3.0 Routing filter temporarily unavailable

// "<user@example.com>" -> "user@example.com" (leading blanks dropped; a
// value without angle brackets is returned as it is).
std::string_view bare_address(std::string_view raw) noexcept;
// A recipient as Postfix logs it: to=<user@example.com> (or FIELD=<...>).
std::string to_field(std::string_view raw, std::string_view field = "to");

}  // namespace unit::milter
