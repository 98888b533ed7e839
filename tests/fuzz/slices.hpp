// slices.hpp: cuts a byte stream into slices the way reads from a socket
// would, to check that an incremental parser gives the same result whatever
// the cuts.
//
// random_slices() is deterministic: the cuts are drawn from a generator
// seeded with a hash of the bytes, so a saved crash input replays exactly,
// and every mutation of the input also moves the cuts. Lengths mix single
// bytes, short runs and long runs. The slices view `bytes`, which must
// outlive them; together they are exactly `bytes`, in order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace unit::fuzz {

// FNV-1a, 64 bits.
inline std::uint64_t hash_bytes(std::string_view bytes) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

// splitmix64: small, fast, and good enough to spread the cuts.
inline std::uint64_t next_random(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline std::vector<std::string_view> random_slices(std::string_view bytes) {
    constexpr std::size_t longest[] = {1, 8, 64, 1024};
    std::uint64_t state = hash_bytes(bytes);
    std::vector<std::string_view> slices;
    while (!bytes.empty()) {
        std::uint64_t r = next_random(state);
        std::size_t cap = longest[r % std::size(longest)];
        std::size_t length = std::min<std::size_t>(bytes.size(), 1 + (r >> 8) % cap);
        slices.push_back(bytes.substr(0, length));
        bytes.remove_prefix(length);
    }
    return slices;
}

}  // namespace unit::fuzz
