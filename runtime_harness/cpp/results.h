// The results document (runtime_harness/results_schema.json, version 2): its
// statistics and validity, computed exactly as runtime_harness/rt_results.py
// computes them (ncc's validator recomputes them from times_ms).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace results {

// nearest-rank percentiles, in per ten thousand, and the samples each needs
struct Percentile {
  const char* name;
  int64_t per_ten_thousand;
  int64_t min_samples;
};
constexpr Percentile kPercentiles[] = {{"p50", 5000, 2}, {"p90", 9000, 10}, {"p99", 9900, 100}, {"p99_9", 9990, 1000}};
constexpr int64_t kValidityMinSamples = 100;  // a p99

inline std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// a JSON number rounded to `decimals` places (times in ms to the nanosecond by default)
inline std::string number(double value, int decimals = 6) {
  char buffer[48];
  double scale = std::pow(10.0, decimals);
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, std::round(value * scale) / scale);
  return buffer;
}

inline std::string optional_number(std::optional<double> value) { return value ? number(*value) : "null"; }

inline std::string optional_text(const std::optional<std::string>& value) {
  return value ? quoted(*value) : "null";
}

inline std::string flag(std::optional<bool> value) { return value ? (*value ? "true" : "false") : "null"; }

struct Deadline {
  std::optional<double> deadline_ms, max_miss_rate;
};

// latency_ms, jitter_ms and deadline, as "key": value pairs of the document
inline std::string statistics(const std::vector<double>& times_ms, const Deadline& deadline) {
  std::vector<double> sorted(times_ms);
  std::sort(sorted.begin(), sorted.end());
  const int64_t n = static_cast<int64_t>(sorted.size());
  std::optional<double> low, high, mean, std_dev, p50, p99;
  std::ostringstream latency;
  if (n) {
    low = sorted.front();
    high = sorted.back();
    double sum = 0, squares = 0;
    for (double t : sorted) sum += t;
    mean = sum / n;
    for (double t : sorted) squares += (t - *mean) * (t - *mean);
    if (n > 1) std_dev = std::sqrt(squares / (n - 1));
  }
  latency << "{\"min\": " << optional_number(low) << ", \"max\": " << optional_number(high)
          << ", \"mean\": " << optional_number(mean) << ", \"std\": " << optional_number(std_dev);
  for (const Percentile& p : kPercentiles) {
    std::optional<double> value;
    if (n >= p.min_samples) {
      int64_t rank = std::max<int64_t>(1, (p.per_ten_thousand * n + 9999) / 10000);
      value = sorted[rank - 1];
    }
    if (std::string(p.name) == "p50") p50 = value;
    if (std::string(p.name) == "p99") p99 = value;
    latency << ", \"" << p.name << "\": " << optional_number(value);
  }
  latency << "}";
  auto difference = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
    if (!a || !b) return std::nullopt;
    return std::round(*a * 1e6) / 1e6 - std::round(*b * 1e6) / 1e6;
  };
  std::ostringstream out;
  out << "\"latency_ms\": " << latency.str() << ", \"jitter_ms\": {\"p99_minus_p50\": "
      << optional_number(difference(p99, p50)) << ", \"max_minus_min\": " << optional_number(difference(high, low))
      << "}, \"deadline\": {\"deadline_ms\": " << optional_number(deadline.deadline_ms)
      << ", \"max_miss_rate\": " << optional_number(deadline.max_miss_rate);
  if (!deadline.deadline_ms) {
    out << ", \"misses\": null, \"miss_rate\": null, \"max_consecutive_misses\": null, \"passed\": null}";
    return out.str();
  }
  int64_t misses = 0, run = 0, longest = 0;
  for (double t : times_ms) {  // in run order
    run = t > *deadline.deadline_ms ? run + 1 : 0;
    misses += t > *deadline.deadline_ms;
    longest = std::max(longest, run);
  }
  std::optional<double> rate;
  std::optional<bool> passed;
  if (n) rate = static_cast<double>(misses) / n;
  if (rate && deadline.max_miss_rate) passed = *rate <= *deadline.max_miss_rate;
  out << ", \"misses\": " << misses << ", \"miss_rate\": " << optional_number(rate)
      << ", \"max_consecutive_misses\": " << longest << ", \"passed\": " << flag(passed) << "}";
  return out.str();
}

// Why the run must end with exit code 4; empty when it passes.
inline std::vector<std::string> failures(size_t n, const std::vector<double>& times_ms, const Deadline& deadline) {
  std::vector<std::string> lines;
  if (static_cast<int64_t>(n) < kValidityMinSamples)
    lines.push_back("run invalid: " + std::to_string(n) + " timed iterations; a p99 needs at least " +
                    std::to_string(kValidityMinSamples) + " (raise --iterations or --min-seconds)");
  if (deadline.deadline_ms && deadline.max_miss_rate && n) {
    size_t misses = std::count_if(times_ms.begin(), times_ms.end(), [&](double t) { return t > *deadline.deadline_ms; });
    if (static_cast<double>(misses) / n > *deadline.max_miss_rate)
      lines.push_back(std::to_string(misses) + " of " + std::to_string(n) + " iterations missed the " +
                      number(*deadline.deadline_ms) + " ms deadline, more than --max-miss-rate");
  }
  return lines;
}

}  // namespace results
