// invariant.hpp: how a fuzz target states a property of the code under test.
//
// require() returns when the property holds; otherwise it prints which one
// broke and aborts, which libFuzzer reports as a crash ("deadly signal") and
// saves the input under its artifact prefix. A target that only calls the
// parser finds crashes; a target that also requires its round trips and
// invariants finds wrong answers.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace unit::fuzz {

inline void require(bool holds, std::string_view property) {
    if (holds) return;
    std::fprintf(stderr, "fuzz: property broken: %.*s\n", static_cast<int>(property.size()), property.data());
    std::abort();
}

}  // namespace unit::fuzz
