// fuzz_policy_request.cpp: PolicyParser (src/policyd/policy_request.hpp) on
// arbitrary bytes, as a policy client could send them. Properties:
//   - the stream fed whole or in random slices gives the same requests and
//     the same end state (failed or not, the same error, the same bytes
//     waiting for their line end);
//   - once the complete requests are taken, a parser that has not failed
//     holds less than one line: a client cannot make it buffer more;
//   - a failed parser stays failed: more bytes give no request and keep
//     the error;
//   - a request written back as attribute lines parses to the same request.
// Each input runs under the default limits and under small ones, so that
// inputs of a few hundred bytes reach the limit checks too.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "invariant.hpp"
#include "policyd/policy_request.hpp"
#include "slices.hpp"

namespace {

using unit::fuzz::require;
using unit::policyd::PolicyLimits;
using unit::policyd::PolicyParser;
using unit::policyd::PolicyRequest;

constexpr PolicyLimits small_limits{64, 256};

// The attributes a request keeps, by their protocol names.
std::array<std::pair<std::string_view, const std::string*>, 7> kept(const PolicyRequest& r) {
    return {{{"request", &r.request},
             {"protocol_state", &r.protocol_state},
             {"recipient", &r.recipient},
             {"sender", &r.sender},
             {"client_address", &r.client_address},
             {"client_name", &r.client_name},
             {"queue_id", &r.queue_id}}};
}

bool same_values(const PolicyRequest& a, const PolicyRequest& b) {
    auto x = kept(a), y = kept(b);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (*x[i].second != *y[i].second) return false;
    return true;
}

struct Outcome {
    std::vector<PolicyRequest> requests;
    bool failed = false;
    std::string error;
    std::size_t buffered = 0;  // what waits for its line end (when not failed)
};

bool same_outcome(const Outcome& a, const Outcome& b) {
    if (a.failed != b.failed || a.error != b.error || a.requests.size() != b.requests.size()) return false;
    if (!a.failed && a.buffered != b.buffered) return false;
    for (std::size_t i = 0; i < a.requests.size(); ++i) {
        if (!same_values(a.requests[i], b.requests[i])) return false;
        if (a.requests[i].attributes != b.requests[i].attributes) return false;
    }
    return true;
}

void require_stays_failed(PolicyParser& parser) {
    const std::string error = parser.error();
    parser.feed("request=smtpd_access_policy\n\n");
    require(!parser.next().has_value(), "a failed parser yields no more requests");
    require(parser.failed() && parser.error() == error, "a failed parser keeps its error");
}

Outcome parse(const std::vector<std::string_view>& slices, PolicyLimits limits) {
    PolicyParser parser(limits);
    Outcome out;
    for (auto slice : slices) {
        parser.feed(slice);
        while (auto request = parser.next()) {
            require(request->attributes > 0, "a request has at least one attribute");
            out.requests.push_back(std::move(*request));
        }
        if (!parser.failed())
            require(parser.buffered() <= limits.max_line + 1, "a parser that has not failed buffers at most one line");
    }
    out.failed = parser.failed();
    out.error = parser.error();
    out.buffered = parser.buffered();
    require(out.failed == !out.error.empty(), "failed() is whether there is an error");
    if (out.failed) require_stays_failed(parser);
    return out;
}

// CRLF line ends: a value that ends in '\r' keeps it (only one '\r' is
// taken as part of the line end).
std::string write_back(const PolicyRequest& r) {
    std::string out;
    for (const auto& [name, value] : kept(r)) {
        out.append(name);
        out += '=';
        out.append(*value);
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

void require_round_trip(const PolicyRequest& r, PolicyLimits limits) {
    // Written back, a line may gain its '\r' and the request its eight lines.
    PolicyParser parser(PolicyLimits{limits.max_line + 1, limits.max_request + 9 * 64});
    parser.feed(write_back(r));
    auto again = parser.next();
    require(again.has_value() && !parser.failed(), "a request written back parses");
    require(same_values(*again, r), "a request written back parses to the same values");
    require(again->attributes == kept(r).size(), "a request written back has exactly the attributes written");
    require(!parser.next().has_value() && parser.buffered() == 0, "a request written back leaves nothing behind");
}

void check(std::string_view stream, PolicyLimits limits) {
    Outcome whole = parse({stream}, limits);
    Outcome sliced = parse(unit::fuzz::random_slices(stream), limits);
    require(same_outcome(whole, sliced), "whole and sliced streams give the same requests and end state");
    for (const auto& request : whole.requests) require_round_trip(request, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view stream(reinterpret_cast<const char*>(data), size);
    check(stream, PolicyLimits{});
    check(stream, small_limits);
    return 0;
}
