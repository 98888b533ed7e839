// Histogram: log-linear latency buckets. Below 1,024 µs one bucket per
// microsecond; above, 128 buckets per power of two (under 0.8% wide), up
// to 2^34 µs; longer latencies land in the last bucket.
#include <algorithm>
#include <bit>
#include <cmath>

#include "load.hpp"

namespace unit::load {

namespace {

constexpr std::uint64_t linear_limit = 1024;  // µs: one bucket each below this
constexpr int sub_bits = 7;                   // 128 buckets per power of two above it
constexpr int first_log2 = 10;                // log2(linear_limit)

std::size_t bucket_of(std::uint64_t micros, std::size_t buckets) noexcept {
    if (micros < linear_limit) return static_cast<std::size_t>(micros);
    int log2 = std::bit_width(micros) - 1;
    auto sub = static_cast<std::size_t>((micros >> (log2 - sub_bits)) & ((1u << sub_bits) - 1));
    std::size_t index = linear_limit + static_cast<std::size_t>(log2 - first_log2) * (1u << sub_bits) + sub;
    return std::min(index, buckets - 1);
}

// The middle of a bucket, in µs.
double midpoint_of(std::size_t bucket) noexcept {
    if (bucket < linear_limit) return static_cast<double>(bucket) + 0.5;
    std::size_t above = bucket - linear_limit;
    int log2 = first_log2 + static_cast<int>(above >> sub_bits);
    double width = std::ldexp(1.0, log2 - sub_bits);
    double low = std::ldexp(1.0, log2) + static_cast<double>(above & ((1u << sub_bits) - 1)) * width;
    return low + width / 2;
}

}  // namespace

void Histogram::add(std::chrono::nanoseconds latency) noexcept {
    auto ns = latency.count() < 0 ? 0 : static_cast<std::uint64_t>(latency.count());
    buckets_[bucket_of(ns / 1000, buckets_.size())]++;
    count_++;
    sum_ns_ += static_cast<double>(ns);
}

void Histogram::merge(const Histogram& other) noexcept {
    for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    sum_ns_ += other.sum_ns_;
}

std::uint64_t Histogram::count() const noexcept { return count_; }

double Histogram::percentile_us(double p) const noexcept {
    if (count_ == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(static_cast<double>(count_) * p / 100.0));
    rank = std::max<std::uint64_t>(rank, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) return midpoint_of(i);
    }
    return midpoint_of(buckets_.size() - 1);
}

double Histogram::mean_us() const noexcept { return count_ == 0 ? 0 : sum_ns_ / static_cast<double>(count_) / 1000; }

}  // namespace unit::load
