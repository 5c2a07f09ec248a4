// core/result.hpp — Result<T>: a value or a std::error_code (std::expected's
// shape, which C++20 lacks). Returned where asyncio would return a value or
// raise: run_until_complete, Future::result.
// Layer: core.
#pragma once

#include <optional>
#include <system_error>
#include <utility>

#include "core/errors.hpp"

namespace evloop {

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}              // NOLINT: implicit, as expected<T>
    Result(std::error_code error) : error_(error) {}           // NOLINT
    Result(errc error) : error_(make_error_code(error)) {}     // NOLINT

    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    /// The error; empty when there is a value.
    std::error_code error() const noexcept { return error_; }
    /// The value. Without one: throws evloop::Error (exception builds) or
    /// logs and aborts (there is no value to return).
    T& value() & {
        ensure();
        return *value_;
    }
    T&& value() && {
        ensure();
        return std::move(*value_);
    }
    const T& value() const& {
        ensure();
        return *value_;
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

private:
    void ensure() const;
    std::optional<T> value_;
    std::error_code error_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(std::error_code error) : error_(error) {}        // NOLINT
    Result(errc error) : error_(make_error_code(error)) {}  // NOLINT
    bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    std::error_code error() const noexcept { return error_; }
    void value() const;

private:
    std::error_code error_;
};

namespace detail {
[[noreturn]] void bad_result_access(std::error_code ec);
}

template <class T>
void Result<T>::ensure() const {
    if (!value_) detail::bad_result_access(error_);
}

inline void Result<void>::value() const {
    if (error_) detail::bad_result_access(error_);
}

}  // namespace evloop
