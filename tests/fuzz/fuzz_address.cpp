// fuzz_address.cpp: normalize_address() and normalize_domain()
// (src/unit/address.hpp) on arbitrary bytes, under several option sets.
// Properties, for every address that normalises:
//   - a normalised address normalises to itself, with the same split
//     (the key the database stores is a fixed point);
//   - its domain is a normalised domain: lowercase ASCII, no trailing dot,
//     normalize_domain() gives it back unchanged;
//   - no control character survives;
//   - without an extension the base is the address; with one, the base
//     normalises to itself and has no extension;
//   - a failure is Errc::Invalid with a reason (Unavailable only when memory
//     runs out, which a fuzz run does not do).
// normalize_domain() alone obeys the same fixed-point property.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "invariant.hpp"
#include "unit/address.hpp"

namespace {

using unit::Address;
using unit::AddressOptions;
using unit::Errc;
using unit::fuzz::require;

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

bool is_lowercase_ascii(std::string_view s) {
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return static_cast<unsigned char>(c) >= 0x80 || (c >= 'A' && c <= 'Z'); });
}

template <class T>
void require_invalid_with_reason(const unit::Result<T>& r) {
    require(r.error().code == Errc::Invalid, "a refused input is Errc::Invalid");
    require(!r.error().message.empty(), "a refused input has a reason");
}

void require_normal_domain(const std::string& domain) {
    require(!domain.empty() && domain.back() != '.', "a normalised domain is not empty and has no trailing dot");
    require(is_lowercase_ascii(domain) && !has_control(domain), "a normalised domain is lowercase ASCII");
    auto again = unit::normalize_domain(domain);
    require(again.ok() && *again == domain, "a normalised domain normalises to itself");
}

void require_same_split(const Address& a, const Address& b) {
    require(a.full() == b.full(), "a normalised address normalises to itself");
    require(a.local == b.local && a.domain == b.domain, "a normalised address keeps its local part and domain");
    require(a.extended == b.extended && a.base_local == b.base_local && a.extension == b.extension,
            "a normalised address splits the same way again");
}

void require_normal_address(const Address& a, const AddressOptions& options) {
    require(!a.local.empty(), "a normalised local part is not empty");
    require(!has_control(a.full()), "no control character survives normalisation");
    require_normal_domain(a.domain);
    if (options.fold_local_case)
        require(std::none_of(a.local.begin(), a.local.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
                "a folded local part has no ASCII capital");

    auto again = unit::normalize_address(a.full(), options);
    if (!again) std::fprintf(stderr, "fuzz: %s: %s\n", a.full().c_str(), again.error().message.c_str());
    require(again.ok(), "a normalised address is accepted again");
    require_same_split(a, *again);

    if (!a.has_extension()) {
        require(a.base_local == a.local && a.extension.empty(), "without an extension the base is the address");
        return;
    }
    // Quoting can make the base two bytes longer than the address ("a.+"
    // gives "a."); past the limit it cannot be a stored key, so it is not
    // normalised again.
    if (a.base().size() > unit::max_address_length) return;
    auto base = unit::normalize_address(a.base(), options);
    require(base.ok() && base->full() == a.base(), "the base of an address normalises to itself");
    require(!base->has_extension(), "the base of an address has no extension");
}

void check_address(std::string_view raw, const AddressOptions& options) {
    auto a = unit::normalize_address(raw, options);
    if (!a) return require_invalid_with_reason(a);
    require_normal_address(*a, options);
}

void check_domain(std::string_view raw) {
    auto d = unit::normalize_domain(raw);
    if (!d) return require_invalid_with_reason(d);
    require_normal_domain(*d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view raw(reinterpret_cast<const char*>(data), size);
    static const AddressOptions option_sets[] = {
        {true, ""},     // no extensions
        {true, "+"},    // Postfix's usual recipient_delimiter
        {false, "-+"},  // '-' brings the owner-/-request exceptions; case kept
        {true, ".=+"},
    };
    for (const auto& options : option_sets) check_address(raw, options);
    check_domain(raw);
    return 0;
}
