// fuzz_route_header.cpp: the routing-header logic of unitmilter
// (src/milter/route_header.hpp) on arbitrary header blocks.
//
// The input is read as a message's header block: "Name: value" lines, a line
// that starts with a space or a tab continuing the previous value (folding,
// kept as "\n" plus the line), a line without ':' being a name with an empty
// value. Properties:
//   - every value parses, and the route formatted from it is one well-formed
//     header value (printable ASCII, every line break followed by a tab, no
//     '@'), that parses back to the same hop, generation and units and
//     formats to the same bytes;
//   - HeaderScan, for several max_stripped (0, 2, 10): counts the route
//     headers and the prefixed ones, finds the highest hop and its
//     generation, and counts the prefixed names as a plain recount does,
//     remembering none once there are more than max_stripped;
//   - check_headers(), for trusted and untrusted clients, several max_hops
//     and loop contexts: an untrusted message is refused exactly when it has
//     more prefixed headers than max_stripped, with 550 5.7.1, and any other
//     refusal is a 4xx; an untrusted hop counts for nothing; a trusted hop
//     below max_hops is never refused; a hop past 2 x max_hops is refused
//     unless every recipient is delivered here;
//   - plan_headers(), applied to the header list as the MTA would, makes at
//     most max_stripped + 1 edits and leaves exactly one route header with
//     the new value (a trusted client with more extra routes than
//     max_stripped: the first one with it, the others as they were), every
//     header without the prefix untouched and in order, and no other
//     prefixed header from an untrusted client.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "invariant.hpp"
#include "milter/route_header.hpp"

namespace {

using namespace unit::milter;
using unit::fuzz::require;

const std::string prefix = "X-Unit-";
const std::string route_name = prefix + "Route";

struct Header {
    std::string name, value;
    bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

Headers read_headers(std::string_view block) {
    Headers headers;
    while (!block.empty()) {
        std::size_t end = block.find('\n');
        std::string_view line = block.substr(0, end);
        block = end == std::string_view::npos ? std::string_view() : block.substr(end + 1);
        if (!headers.empty() && !line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            headers.back().value += '\n';
            headers.back().value.append(line);
            continue;
        }
        std::size_t colon = line.find(':');
        Header h{std::string(line.substr(0, colon)), {}};
        if (colon != std::string_view::npos) {
            std::string_view value = line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            h.value = std::string(value);
        }
        headers.push_back(std::move(h));
    }
    return headers;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && has_prefix(a, b); }

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// ---- parse_route / format_route ----------------------------------------------

void require_well_formed(const std::string& value) {
    for (std::size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        if (c == '\n') {
            require(i + 1 < value.size() && value[i + 1] == '\t', "a line break in a route is folding (\\n\\t)");
            continue;
        }
        require(c == '\t' || (c >= 0x20 && c < 0x7f), "a formatted route is printable ASCII");
    }
    require(value.find('@') == std::string::npos, "a formatted route holds no address");
}

std::vector<std::string> sorted_distinct(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

void check_route_value(std::string_view value) {
    Route route = parse_route(value);
    if (route.hop) require(*route.hop >= 0 && *route.hop <= max_hop_value, "a parsed hop is within 0..max_hop_value");
    if (route.gen) require(*route.gen >= 0, "a parsed generation is not negative");
    for (const auto& u : route.units)
        require(!u.empty() && u.size() <= max_unit_name && std::all_of(u.begin(), u.end(), is_unit_name_char),
                "a parsed unit is a unit name");

    std::string formatted = format_route(route);
    require_well_formed(formatted);
    Route again = parse_route(formatted);
    require(again.hop == route.hop.value_or(0), "a formatted route keeps its hop");
    require(again.gen == route.gen.value_or(0), "a formatted route keeps its generation");
    require(again.units == sorted_distinct(route.units), "a formatted route keeps its units, sorted and distinct");
    require(format_route(again) == formatted, "a formatted route formats to the same bytes");
}

// ---- HeaderScan ----------------------------------------------------------------

HeaderScan scan_all(const Headers& headers, std::size_t max_stripped) {
    HeaderScan scan(prefix, max_stripped);
    for (const auto& h : headers) scan.add(h.name, h.value);
    return scan;
}

void check_scan(const HeaderScan& scan, const Headers& headers) {
    std::size_t routes = 0;
    std::optional<int> hop;
    std::optional<std::int64_t> gen;
    std::size_t prefixed = 0;
    for (const auto& h : headers) {
        if (has_prefix(h.name, prefix)) ++prefixed;
        if (!iequals(h.name, route_name)) continue;
        ++routes;
        Route r = parse_route(h.value);
        if (r.hop && *r.hop >= hop.value_or(0)) {
            hop = r.hop;
            gen = r.gen;
        }
    }
    require(scan.route_count() == routes, "the scan counts every route header");
    require(scan.occurrences() == prefixed, "the scan counts every prefixed header");
    require(scan.flooded() == (prefixed > scan.max_stripped()), "flooded: more prefixed headers than max_stripped");
    require(scan.incoming_hop() == hop, "the scan finds the highest hop");
    require(scan.incoming_generation() == gen, "the scan keeps the generation of the highest hop");
    require(scan.prefixed().size() <= scan.max_stripped(), "the scan remembers at most max_stripped names");
    if (scan.flooded()) require(scan.prefixed().empty(), "a flooded scan remembers no name");
    std::size_t counted = 0;
    std::vector<std::string> names;
    for (const auto& n : scan.prefixed()) {
        require(n.count > 0 && has_prefix(n.name, prefix), "a remembered name has the prefix and occurs");
        counted += static_cast<std::size_t>(n.count);
        names.push_back(lowercase(n.name));
    }
    std::sort(names.begin(), names.end());
    require(std::adjacent_find(names.begin(), names.end()) == names.end(),
            "remembered names are distinct without case");
    if (!scan.flooded()) require(counted == prefixed, "the scan counts every prefixed header by name");
}

// ---- check_headers ---------------------------------------------------------------

void require_temporary(const Reply& reply) {
    require(reply.code.size() == 3 && reply.code[0] == '4' && reply.xcode.rfind("4.", 0) == 0,
            "a refusal but the forged header flood is a 4xx");
}

void check_verdict(const HeaderScan& scan, bool trusted, int max_hops, const LoopContext& here) {
    HeaderVerdict v = check_headers(scan, trusted, max_hops, here);
    require(!(v.refuse && v.released), "a released message is not refused");
    if (!trusted) {
        require(v.incoming == 0 && v.outgoing == 1, "an untrusted hop counts for nothing");
        require(v.refuse.has_value() == scan.flooded(), "an untrusted message is refused only for a flood");
        if (v.refuse) require(*v.refuse == forged_headers_reply(), "a flood is refused with 550 5.7.1");
        return;
    }
    if (v.refuse) require_temporary(*v.refuse);
    require(v.incoming == scan.incoming_hop().value_or(0), "a trusted hop counts");
    require(v.outgoing == std::min(v.incoming + 1, max_hop_value), "the outgoing hop is one more, saturated");
    if (v.incoming < max_hops) require(!v.refuse && !v.released, "a hop below max_hops passes");
    if (v.incoming >= max_hops && here.delivered_here) require(!v.refuse, "a message delivered here is released");
    if (v.incoming >= 2 * max_hops && !here.delivered_here) require(v.refuse.has_value(), "2 x max_hops ends any loop");
}

// ---- plan_headers ------------------------------------------------------------------

// The edits applied as the MTA applies them: in order, `index` counting the
// headers of that name without case. Deleted headers are marked, not erased,
// and each name keeps the positions of its live headers, so that a plan of
// a thousand deletions is checked in linear time.
class EditedHeaders {
public:
    explicit EditedHeaders(const Headers& headers) {
        for (const auto& h : headers) append(h);
    }

    void apply(const HeaderEdit& e) {
        if (e.kind == HeaderEdit::Kind::Add) return append(Header{e.name, e.value});
        auto& live = positions_[lowercase(e.name)];
        require(e.index >= 1 && static_cast<std::size_t>(e.index) <= live.size(),
                "an edit names a header that is there");
        auto at = live.begin() + (e.index - 1);
        if (e.kind == HeaderEdit::Kind::Change) {
            headers_[*at].first.value = e.value;
            return;
        }
        headers_[*at].second = false;
        live.erase(at);
    }

    Headers result() const {
        Headers out;
        for (const auto& [header, alive] : headers_)
            if (alive) out.push_back(header);
        return out;
    }

private:
    void append(Header h) {
        positions_[lowercase(h.name)].push_back(headers_.size());
        headers_.emplace_back(std::move(h), true);
    }

    std::vector<std::pair<Header, bool>> headers_;  // with whether it is still there
    std::unordered_map<std::string, std::vector<std::size_t>> positions_;
};

Headers apply_edits(const Headers& headers, const std::vector<HeaderEdit>& edits) {
    EditedHeaders edited(headers);
    for (const auto& e : edits) edited.apply(e);
    return edited.result();
}

Headers without(const Headers& headers, bool (*drop)(const Header&)) {
    Headers out;
    std::copy_if(headers.begin(), headers.end(), std::back_inserter(out), [&](const Header& h) { return !drop(h); });
    return out;
}

bool is_prefixed(const Header& h) { return has_prefix(h.name, prefix); }
bool is_route(const Header& h) { return iequals(h.name, route_name); }

void check_plan(const HeaderScan& scan, const Headers& headers, bool trusted, const std::string& value) {
    auto edits = plan_headers(scan, trusted, value);
    require(edits.size() <= scan.max_stripped() + 1, "at most max_stripped + 1 edits");
    Headers after = apply_edits(headers, edits);
    auto routes = without(after, [](const Header& h) { return !is_route(h); });
    if (trusted && scan.routes_flooded()) {
        auto before = without(headers, [](const Header& h) { return !is_route(h); });
        require(routes.size() == before.size() && routes.front().value == value &&
                    std::equal(routes.begin() + 1, routes.end(), before.begin() + 1),
                "a trusted route flood: the first route has the new value, the others stay");
    } else {
        require(routes.size() == 1 && routes.front().value == value,
                "exactly one route header leaves, with the new value");
    }
    require(without(after, is_prefixed) == without(headers, is_prefixed), "headers without the prefix are untouched");
    if (trusted)
        require(without(after, is_route) == without(headers, is_route),
                "a trusted client's other prefixed headers stay");
    else
        require(without(after, is_route) == without(after, is_prefixed),
                "an untrusted client's prefixed headers all go");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Headers headers = read_headers(std::string_view(reinterpret_cast<const char*>(data), size));
    for (const auto& h : headers) check_route_value(h.value);

    const LoopContext contexts[] = {
        {-1, false},
        {0, false},
        {std::numeric_limits<std::int64_t>::max(), false},
        {-1, true},
    };
    for (std::size_t max_stripped : {0, 2, 10}) {
        HeaderScan scan = scan_all(headers, max_stripped);
        check_scan(scan, headers);
        for (bool trusted : {false, true}) {
            for (int max_hops : {1, 3, 24})
                for (const auto& here : contexts) check_verdict(scan, trusted, max_hops, here);
            if (!trusted && scan.flooded()) continue;  // refused: nothing is planned
            Route route = headers.empty() ? Route{} : parse_route(headers.back().value);
            route.hop = check_headers(scan, trusted, 3).outgoing;
            check_plan(scan, headers, trusted, format_route(route));
        }
    }
    return 0;
}
