// result.hpp: Result<T>, the return type of every fallible libunit call.
//
// A Result holds either a value or an Error (a class and a one-line message
// in Postfix's shape, "object: problem: cause"). No exception crosses the
// library API: callers test ok() and read value() or error(). Reading the
// wrong side is a programming error (assert).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace unit {

enum class Errc {
    Invalid,      // bad input: a malformed address, a bad CSV row, a bad value
    NotFound,     // the named object does not exist (unknown unit, mailbox ...)
    Conflict,     // the operation contradicts the data (duplicate, still in use ...)
    Unavailable,  // the database cannot answer now (missing, locked): retry later
    Stale,        // the replica is older than the configured maximum: retry later
    Corrupt,      // the database fails validation (integrity, schema version)
    Io,           // a file operation failed
    Timeout,      // a lookup ran past its bound (lookup_timeout), interrupted: retry later
};

struct Error {
    Errc code;
    std::string message;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& {
        assert(!ok());
        return std::get<1>(v_);
    }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const Error& error() const& {
        assert(!ok_);
        return error_;
    }

private:
    Error error_{Errc::Invalid, {}};
    bool ok_ = true;
};

}  // namespace unit
