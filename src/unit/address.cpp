// address.cpp: the normalisation described in address.hpp.
//
// The local part is handled in two steps: first its logical value is
// recovered (a well-formed quoted string is unquoted and its quoted-pairs
// resolved; anything else is taken literally, which is Postfix's internal
// form), then that value is written back in its one canonical external
// spelling: a dot-atom when it is one, otherwise a quoted string. This makes
// `"john doe"@x` (as a table lookup sees it) and `john doe@x` (as a policy
// request sees it) the same key.
#include "unit/address.hpp"

#include <arpa/inet.h>
#include <idn2.h>

#include <algorithm>
#include <exception>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace unit {
namespace {

using Notes = std::vector<std::string>;

constexpr std::size_t max_domain_length = 253;  // RFC 1035, without the root dot
constexpr std::size_t max_label_length = 63;

Error invalid(std::string_view prefix, std::string_view reason) {
    return make_error(Errc::Invalid, std::string(prefix) + std::string(reason));
}

// libidn2 ran out of memory: as operator new does, the program's new handler
// decides (the daemons' ends the process), else std::bad_alloc.
[[noreturn]] void idn2_out_of_memory() {
    if (std::new_handler handler = std::get_new_handler()) handler();
    throw std::bad_alloc();
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Returns whether anything changed.
bool lowercase_ascii(std::string& s) noexcept {
    bool changed = false;
    for (char& c : s) {
        char lower = ascii_lower(c);
        changed |= lower != c;
        c = lower;
    }
    return changed;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool is_ascii(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. libidn2 and the database must never see anything else.
bool valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t extra = 0;
        unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0) lo = 0xa0;  // overlong
            if (c == 0xed) hi = 0x9f;  // surrogates
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0) lo = 0x90;  // overlong
            if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
        } else {
            return false;
        }
        if (s.size() - i <= extra) return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            auto b = static_cast<unsigned char>(s[i + k]);
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return false;
        }
        i += extra + 1;
    }
    return true;
}

// The checks every input gets before it is parsed. `what` names it in the
// reason ("address", "domain").
std::optional<std::string> check_bytes(std::string_view s, std::string_view what) {
    std::string w(what);
    if (s.empty()) return "empty " + w;
    if (s.size() > max_address_length) return w + " longer than " + std::to_string(max_address_length) + " bytes";
    if (has_control(s)) return "control character in " + w;
    if (!valid_utf8(s)) return "invalid UTF-8 in " + w;
    return std::nullopt;
}

// ---- domain ----------------------------------------------------------------

// A DNS name as we store it: lowercase letters, digits, '-', '_' (seen in
// real mail domains) and dots, no empty label, DNS length limits.
std::optional<std::string> check_ascii_domain(std::string_view d) {
    if (d.size() > max_domain_length) return "invalid domain: longer than 253 bytes";
    std::size_t label = 0;
    for (char c : d) {
        if (c == '.') {
            if (label == 0) return "invalid domain: empty label";
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return "invalid domain: character not allowed";
        if (++label > max_label_length) return "invalid domain: label longer than 63 bytes";
    }
    if (label == 0) return "invalid domain: empty label";
    return std::nullopt;
}

// RFC 5321 dcontent: printable ASCII but '[', '\' and ']'.
bool is_dcontent(char c) noexcept { return (c >= 33 && c <= 90) || (c >= 94 && c <= 126); }

// "[1.2.3.4]", "[ipv6:...]" or a general literal "[tag:content]" (RFC 5321
// 4.1.3). Kept verbatim but lowercased; the two IP forms must parse.
Result<std::string> literal_domain(std::string_view d, Notes& notes) {
    std::string lit(d);
    if (lowercase_ascii(lit)) notes.emplace_back("domain lowercased");
    std::string body = lit.substr(1, lit.size() - 2);
    if (body.empty() || !std::all_of(body.begin(), body.end(), is_dcontent))
        return invalid("", "invalid domain: malformed address literal");
    unsigned char buf[sizeof(struct in6_addr)];
    bool ok = true;
    if (body.starts_with("ipv6:")) {
        ok = inet_pton(AF_INET6, body.c_str() + 5, buf) == 1;
    } else if (body.find(':') == std::string::npos) {
        ok = inet_pton(AF_INET, body.c_str(), buf) == 1;
    }
    if (!ok) return invalid("", "invalid domain: malformed address literal");
    return lit;
}

// The all-ASCII fast path: no libidn2 call for the common case.
Result<std::string> ascii_domain(std::string_view d, Notes& notes) {
    std::string out(d);
    bool changed = lowercase_ascii(out);
    if (auto why = check_ascii_domain(out)) return invalid("", *why);
    if (changed) notes.emplace_back("domain lowercased");
    return out;
}

struct Idn2Free {
    void operator()(char* p) const noexcept { idn2_free(p); }
};

// U-labels to A-labels, IDNA2008 with UTS #46 non-transitional mapping (what
// current browsers and MTAs do: 'ß' stays 'ß', it is not mapped to "ss").
Result<std::string> idn_domain(std::string_view d, Notes& notes) {
    std::string in(d);
    lowercase_ascii(in);
    // Checked here because an empty label would otherwise reach libidn2
    // and its answer for it has changed between versions.
    if (in.front() == '.' || in.back() == '.' || in.find("..") != std::string::npos)
        return invalid("", "invalid domain: empty label");
    char* raw = nullptr;
    int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(in.c_str()), reinterpret_cast<uint8_t**>(&raw),
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    std::unique_ptr<char, Idn2Free> owned(raw);
    if (rc == IDN2_MALLOC) idn2_out_of_memory();
    if (rc != IDN2_OK || !owned) return invalid("", std::string("invalid domain: ") + idn2_strerror(rc));
    std::string out(owned.get());
    // The mapping may pass through ASCII we do not accept ('!', '*' ...).
    if (auto why = check_ascii_domain(out)) return invalid("", *why);
    notes.push_back("U-label domain converted to " + out);
    return out;
}

// Errors carry the reason only; the caller adds its prefix.
Result<std::string> domain_key(std::string_view d, Notes& notes) {
    // Exactly one trailing dot is the root of a fully qualified name; a
    // second one would be an empty label and is rejected below.
    if (d.ends_with('.')) {
        d.remove_suffix(1);
        notes.emplace_back("trailing dot removed");
    }
    if (d.empty()) return invalid("", "invalid domain: empty label");
    if (d.front() == '[' && d.back() == ']' && d.size() >= 2) return literal_domain(d, notes);
    if (is_ascii(d)) return ascii_domain(d, notes);
    return idn_domain(d, notes);
}

// ---- local part --------------------------------------------------------------

// RFC 5322 atext, plus any non-ASCII byte (RFC 6531 UTF8-non-ascii; the
// input is already known to be valid UTF-8).
bool is_atext(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// atext runs separated by single dots, no leading or trailing dot.
bool is_dot_atom(std::string_view s) noexcept {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    char prev = 0;
    for (char c : s) {
        if (c == '.' ? prev == '.' : !is_atext(c)) return false;
        prev = c;
    }
    return true;
}

// The content of `s` when all of it is one RFC 5321 quoted string, with the
// quoted-pairs resolved; nullopt otherwise.
std::optional<std::string> unquote(std::string_view s) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::nullopt;
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        char c = s[i];
        if (c == '"') return std::nullopt;  // a quote that ends the string early
        if (c == '\\') {
            // quoted-pairSMTP is '\' then %d32-126; the closing quote cannot be escaped.
            if (i + 2 >= s.size()) return std::nullopt;
            c = s[++i];
            if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
        }
        out += c;
    }
    return out;
}

// The canonical external spelling of a logical local part.
std::string render_local(std::string_view logical) {
    if (is_dot_atom(logical)) return std::string(logical);
    std::string out = "\"";
    for (char c : logical) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

struct LocalPart {
    std::string logical;  // unquoted, quoted-pairs resolved
    bool was_quoted = false;
};

LocalPart parse_local(std::string_view raw) {
    if (auto content = unquote(raw)) return {std::move(*content), true};
    return {std::string(raw), false};
}

void note_rendering(const LocalPart& part, std::string_view raw, std::string_view rendered, Notes& notes) {
    bool quoted_now = rendered.front() == '"';
    if (part.was_quoted && !quoted_now) {
        notes.emplace_back("quoted local part unquoted");
    } else if (part.was_quoted && !iequals(raw, rendered)) {  // case folding is noted on its own
        notes.emplace_back("quoted local part re-escaped");
    } else if (!part.was_quoted && quoted_now) {
        notes.emplace_back("local part quoted (not a dot-atom)");
    }
}

// Where Postfix's split_addr() would cut the local part (the index of the
// delimiter character), or npos.
std::size_t split_point(std::string_view local, std::string_view delimiters) {
    if (delimiters.empty()) return std::string_view::npos;
    // The names the mail system itself uses are never split. double-bounce
    // is Postfix's default double_bounce_sender, which split_addr also keeps.
    if (iequals(local, "postmaster") || iequals(local, "mailer-daemon") || iequals(local, "double-bounce"))
        return std::string_view::npos;
    // Mailing-list conventions predate '-' as a delimiter; Postfix keeps
    // them whole for backwards compatibility.
    if (delimiters.find('-') != std::string_view::npos) {
        if (local.size() >= 6 && iequals(local.substr(0, 6), "owner-")) return std::string_view::npos;
        if (local.size() > 8 && iequals(local.substr(local.size() - 8), "-request")) return std::string_view::npos;
    }
    std::size_t len = local.find_first_of(delimiters);
    // A delimiter in first position would leave an empty base.
    if (len == 0) return std::string_view::npos;
    return len;
}

// Only ASCII delimiter characters count: a byte of a multi-byte character
// would cut that character in half.
std::string ascii_delimiters(std::string_view set) {
    std::string out;
    std::copy_if(set.begin(), set.end(), std::back_inserter(out),
                 [](char c) { return static_cast<unsigned char>(c) < 0x80 && c != 0; });
    return out;
}

void apply_split(Address& a, std::string_view logical, const AddressOptions& options) {
    std::string delimiters = ascii_delimiters(options.recipient_delimiter);
    std::size_t at = split_point(logical, delimiters);
    if (at == std::string_view::npos) {
        a.base_local = a.local;
        return;
    }
    a.base_local = render_local(logical.substr(0, at));
    a.extension = std::string(logical.substr(at + 1));
    a.extended = true;
    a.notes.push_back("extension \"" + a.extension + "\" split off at '" + logical[at] + "'");
}

Result<Address> normalize(std::string_view raw, const AddressOptions& options) {
    Address a;
    // <user@domain> as it appears in SMTP and in headers.
    if (raw.size() >= 2 && raw.front() == '<' && raw.back() == '>') {
        raw = raw.substr(1, raw.size() - 2);
        a.notes.emplace_back("angle brackets removed");
    }
    if (auto why = check_bytes(raw, "address")) return invalid("address: ", *why);
    // The last '@': a quoted local part may itself contain '@'.
    std::size_t at = raw.rfind('@');
    if (at == std::string_view::npos) return invalid("address: ", "no @ in address");
    std::string_view local_raw = raw.substr(0, at);
    std::string_view domain_raw = raw.substr(at + 1);
    if (local_raw.empty()) return invalid("address: ", "empty local part");
    if (domain_raw.empty()) return invalid("address: ", "empty domain");

    auto domain = domain_key(domain_raw, a.notes);
    if (!domain) return invalid("address: ", domain.error().message);
    a.domain = std::move(domain.value());

    LocalPart part = parse_local(local_raw);
    if (part.logical.empty()) return invalid("address: ", "empty local part");
    if (options.fold_local_case && lowercase_ascii(part.logical))
        a.notes.emplace_back("local part folded to lowercase");
    a.local = render_local(part.logical);
    // Quoting and A-labels can lengthen an address: a key past the limit
    // could never be normalised again, so it is refused like a long input.
    if (a.local.size() + 1 + a.domain.size() > max_address_length)
        return invalid("address: ",
                       "address longer than " + std::to_string(max_address_length) + " bytes once normalised");
    note_rendering(part, local_raw, a.local, a.notes);
    apply_split(a, part.logical, options);
    return a;
}

}  // namespace

Result<Address> normalize_address(std::string_view raw, const AddressOptions& options) noexcept {
    return normalize(raw, options);
}

Result<std::string> normalize_domain(std::string_view raw) noexcept {
    if (auto why = check_bytes(raw, "domain")) return invalid("domain: ", *why);
    Notes notes;
    auto domain = domain_key(raw, notes);
    if (!domain) return invalid("domain: ", domain.error().message);
    return domain;
}

}  // namespace unit
