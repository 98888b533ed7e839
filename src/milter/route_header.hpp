// route_header.hpp: the routing headers of a message, as unitmilter sees and
// writes them, and the per-message decision about them. No libmilter here:
// the callbacks (filter.cpp) feed headers in and apply the edits out.
//
// The route stamp is one header, `<prefix>Route` (X-Unit-Route by default):
//
//     X-Unit-Route: hop=N; gen=G; units=u1,u2; by=HOST
//
// parse_route() reads an incoming value tolerantly: parameters separated by
// ';', names case-insensitive, spaces, tabs and folding (CR, LF) anywhere
// between tokens; unknown parameters are ignored. A hop that is missing or
// not a decimal number counts as no hop; a decimal number too large is
// saturated at max_hop_value (a loop guard must not wrap). Units outside the
// unit-name charset (letters, digits, '-', '_', '.') are dropped.
//
// format_route() writes an outgoing value: every value sanitised (units:
// other bytes become '_'; by: likewise, with ':' '[' ']' also kept, for
// address literals), units sorted and distinct, folded with "\n\t" between
// units when a line would pass 78 characters. It never contains a recipient
// address: nothing but the four parameters is written.
//
// HeaderScan collects, header by header, what the end-of-message decision
// needs: how many headers start with the prefix (compared without case), the
// distinct such names with their occurrence counts, and the route headers'
// count and highest hop. Its memory and time are bounded by max_stripped,
// the most prefixed headers one message may have deleted (unitmilter's
// max_stripped_headers, at most max_stripped_limit): names are remembered
// only while the message has no more than that many prefixed headers; past
// it (flooded()) they are forgotten and only counted, since such a message
// is refused (untrusted) or keeps them (trusted). Values are parsed and
// dropped. Each header costs one hash lookup of its name at most, so a
// message of many headers costs linear time and a bounded amount of memory.
//
// check_headers() and plan_headers() are the decision. Their edits are
// bounded for every client: at most max_stripped deletions and one change
// or addition. (The MTA pays for each deletion by index: Postfix's cleanup
// finds the header by reading the queue file's headers from the start, so n
// deletions cost n times the header section.)
//   - untrusted client: every prefixed header is deleted (every occurrence,
//     by index, highest index first), the incoming hop is ignored and the
//     route is added with hop=1; a message with more prefixed headers than
//     max_stripped (flooded()) is refused with forged_headers_reply(), a
//     5xx: those headers did not come from a peer (a unitmilter host sends
//     one) and cannot all be deleted at a bounded cost, and a retry would
//     carry them again;
//   - trusted client: other prefixed headers are kept; the incoming route's
//     highest hop is the incoming hop; a hop >= max_hops refuses the message
//     with loop_reply, unless the loop is over (LoopContext): every
//     recipient is delivered on this unit, or this host's directory is at
//     least as new as the generation that stamped the route (this host has
//     caught up with the one that sent the message here) and the hop is
//     still below 2 x max_hops, a ceiling that ends any loop between hosts
//     that agree (a configuration loop, not a disagreement);
//     otherwise the first route header is changed to the new value (hop+1)
//     and any further route headers are deleted, so that exactly one route
//     header leaves; but when there are more further ones than max_stripped
//     (routes_flooded()), they are left in place, unchanged: the message is
//     system mail and is not refused for it, the changed route carries the
//     highest hop, and the next host counts the highest.
//
// Pure functions and values: thread-safe, no logging, nothing throws but
// std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace unit::milter {

inline constexpr int max_hop_value = 1000000;
// The highest max_stripped_headers: what a message may make the MTA delete,
// and the names HeaderScan may remember (each up to a header's size).
inline constexpr std::size_t max_stripped_limit = 100;
inline constexpr std::size_t max_unit_name = 64;
inline constexpr std::size_t max_host_name = 255;

// An SMTP reply for smfi_setreply.
struct Reply {
    std::string code, xcode, text;
    bool operator==(const Reply&) const = default;
};

Reply loop_reply();            // 451 4.4.6 routing loop: directory replicas disagree
Reply forged_headers_reply();  // 550 5.7.1 too many forged routing headers

struct Route {
    std::optional<int> hop;
    std::optional<std::int64_t> gen;
    std::vector<std::string> units;
    std::string by;
    bool operator==(const Route&) const = default;
};

Route parse_route(std::string_view value);
// The value for a header line (hop and gen missing are written as 0).
std::string format_route(const Route& route);

// Whether `c` may appear in a unit name.
bool is_unit_name_char(char c) noexcept;
// Case-insensitive ASCII prefix test, for header names.
bool has_prefix(std::string_view name, std::string_view prefix) noexcept;

class HeaderScan {
public:
    // prefix: the routing prefix ("X-Unit-"); the route header is prefix+"Route".
    // max_stripped: the most prefixed headers a message may have deleted
    // (at most max_stripped_limit).
    HeaderScan(std::string prefix, std::size_t max_stripped);

    // Every header of the message, in order, as the MTA sends it.
    void add(std::string_view name, std::string_view value);
    // Forgets the message (the next one on the connection starts clean).
    void clear() noexcept;

    struct Name {
        std::string name;  // as first seen
        int count = 0;     // occurrences
    };
    // The distinct prefixed names; empty once flooded().
    const std::vector<Name>& prefixed() const noexcept { return prefixed_; }
    // Every prefixed header, the route headers included.
    std::size_t occurrences() const noexcept { return occurrences_; }
    std::size_t max_stripped() const noexcept { return max_stripped_; }
    // More prefixed headers than max_stripped.
    bool flooded() const noexcept { return occurrences_ > max_stripped_; }
    // More route headers than max_stripped besides the first one.
    bool routes_flooded() const noexcept { return route_count_ > max_stripped_ + 1; }
    const std::string& route_name() const noexcept { return route_name_; }
    std::size_t route_count() const noexcept { return route_count_; }
    // The highest valid hop among the route headers; nullopt when none had one.
    std::optional<int> incoming_hop() const noexcept { return hop_; }
    // The generation in the route header with that hop; nullopt when none.
    std::optional<std::int64_t> incoming_generation() const noexcept { return gen_; }

private:
    std::string prefix_, route_name_;
    std::size_t max_stripped_;
    std::vector<Name> prefixed_;
    std::unordered_map<std::string, std::size_t> index_;  // lowercased name -> its entry in prefixed_
    std::size_t occurrences_ = 0, route_count_ = 0;
    std::optional<int> hop_;
    std::optional<std::int64_t> gen_;
};

struct HeaderVerdict {
    std::optional<Reply> refuse;  // set: refuse the message with this reply
    int incoming = 0;             // the hop that counts (0: none)
    int outgoing = 1;             // the hop to stamp
    bool released = false;        // at or past max_hops, but the loop is over (LoopContext)
};

// What this host knows about a message that reached max_hops.
struct LoopContext {
    std::int64_t generation = -1;  // this host's directory generation (-1: unknown)
    bool delivered_here = false;   // role unit: every recipient is delivered on this unit
};

HeaderVerdict check_headers(const HeaderScan& scan, bool trusted, int max_hops, const LoopContext& here = {});

// One header edit, in the order they must be applied.
struct HeaderEdit {
    enum class Kind { Delete, Change, Add };
    Kind kind;
    std::string name;
    int index = 0;      // Delete, Change: 1-based occurrence among headers of that name
    std::string value;  // Change, Add
    bool operator==(const HeaderEdit&) const = default;
};

// The edits that leave exactly one route header with `route_value` (for a
// trusted client whose routes_flooded(): the first one with it, the others
// untouched); at most scan.max_stripped() + 1 of them. Not for an untrusted
// message that is flooded() (it is refused).
std::vector<HeaderEdit> plan_headers(const HeaderScan& scan, bool trusted, const std::string& route_value);

}  // namespace unit::milter
