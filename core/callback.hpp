// core/callback.hpp — the move-only callable every scheduled callback is stored in.
//
// std::function copies, may allocate for any capture and throws when empty.
// UniqueFunction instead keeps a callable of up to `Inline` bytes (default 32:
// a lambda capturing four pointers) inside the object, never allocates for it,
// and accepts move-only captures. A bigger callable falls back to one heap
// allocation; the fallback is documented, not an error, because user code should
// not fail to compile for capturing a std::string.
// Layer: core. Read next: core/handle.hpp.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace evloop {

template <class Signature, std::size_t Inline = 32>
class UniqueFunction;

template <class R, class... Args, std::size_t Inline>
class UniqueFunction<R(Args...), Inline> {
    struct Ops {
        R (*invoke)(void* self, Args... args);
        // Moves the callable from `src` storage into `dst` storage and destroys the
        // source; null means "memcpy is enough" (trivially relocatable captures).
        void (*relocate)(void* dst, void* src) noexcept;
        void (*destroy)(void* self) noexcept;  // null for trivially destructible
    };

    template <class F>
    static constexpr bool fits_inline =
        sizeof(F) <= Inline && alignof(F) <= alignof(std::max_align_t) &&
        std::is_nothrow_move_constructible_v<F>;

    template <class F>
    struct InlineOps {
        static R invoke(void* self, Args... args) { return (*static_cast<F*>(self))(std::forward<Args>(args)...); }
        static void relocate(void* dst, void* src) noexcept {
            ::new (dst) F(std::move(*static_cast<F*>(src)));
            static_cast<F*>(src)->~F();
        }
        static void destroy(void* self) noexcept { static_cast<F*>(self)->~F(); }
        static constexpr bool trivial = std::is_trivially_copyable_v<F>;
        static constexpr Ops ops{&invoke, trivial ? nullptr : &relocate,
                                 std::is_trivially_destructible_v<F> ? nullptr : &destroy};
    };

    // The heap fallback stores one pointer inline: relocation is a memcpy.
    template <class F>
    struct HeapOps {
        static F*& ptr(void* self) { return *static_cast<F**>(self); }
        static R invoke(void* self, Args... args) { return (*ptr(self))(std::forward<Args>(args)...); }
        static void destroy(void* self) noexcept { delete ptr(self); }
        static constexpr Ops ops{&invoke, nullptr, &destroy};
    };

public:
    UniqueFunction() noexcept = default;
    UniqueFunction(std::nullptr_t) noexcept {}

    template <class F, class D = std::decay_t<F>,
              class = std::enable_if_t<!std::is_same_v<D, UniqueFunction> && std::is_invocable_r_v<R, D&, Args...>>>
    UniqueFunction(F&& f) {  // NOLINT: implicit on purpose, as std::function
        if constexpr (fits_inline<D>) {
            // Relocation copies all of storage_; give the unused tail a value.
            if constexpr (sizeof(D) < sizeof(storage_))
                std::memset(storage_ + sizeof(D), 0, sizeof(storage_) - sizeof(D));
            ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
            ops_ = &InlineOps<D>::ops;
        } else {
            std::memset(storage_, 0, sizeof(storage_));
            ::new (static_cast<void*>(storage_)) D*(new D(std::forward<F>(f)));
            ops_ = &HeapOps<D>::ops;
        }
    }

    UniqueFunction(UniqueFunction&& other) noexcept { take(other); }
    UniqueFunction& operator=(UniqueFunction&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    UniqueFunction(const UniqueFunction&) = delete;
    UniqueFunction& operator=(const UniqueFunction&) = delete;
    ~UniqueFunction() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }

    /// Calls the stored callable. Calling an empty UniqueFunction is a bug; the
    /// loop never does it (it checks), and user code should not either.
    R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

    /// Destroys the stored callable (and whatever it captured) now.
    void reset() noexcept {
        if (ops_ && ops_->destroy) ops_->destroy(storage_);
        ops_ = nullptr;
    }

    /// True if a callable of type F is stored without a heap allocation.
    template <class F>
    static constexpr bool stores_inline() noexcept { return fits_inline<std::decay_t<F>>; }

private:
    void take(UniqueFunction& other) noexcept {
        ops_ = std::exchange(other.ops_, nullptr);
        if (!ops_) return;
        if (ops_->relocate)
            ops_->relocate(storage_, other.storage_);
        else
            std::memcpy(storage_, other.storage_, sizeof(storage_));
    }

    alignas(std::max_align_t) unsigned char storage_[Inline < sizeof(void*) ? sizeof(void*) : Inline];
    const Ops* ops_ = nullptr;
};

/// What call_soon, call_later, call_at and add_reader store: no arguments, no
/// result (bind arguments by capturing them, the C++ spelling of asyncio's *args).
/// 24 bytes inline (a lambda capturing three pointers) rather than 32, so that
/// a HandleNode fits one cache line (core/handle.hpp).
using Callback = UniqueFunction<void(), 24>;

}  // namespace evloop
