// The machine the harness runs on and the scheduling it asked for and got,
// as runtime_harness/rt_env.py records them: every request (pinning,
// SCHED_FIFO, mlockall) is granted or refused with the system's reason, and
// a refusal never stops the run.
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "results.h"

namespace env {

using results::flag;
using results::optional_text;
using results::quoted;

inline std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  std::string value = text.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\0' || value.back() == ' ')) value.pop_back();
  return value;
}

inline std::optional<std::string> cpu_model() {
  static const std::map<std::pair<int, int>, const char*> arm_cores = {
      {{0x41, 0xD03}, "Cortex-A53"}, {{0x41, 0xD04}, "Cortex-A35"}, {{0x41, 0xD05}, "Cortex-A55"},
      {{0x41, 0xD07}, "Cortex-A57"}, {{0x41, 0xD08}, "Cortex-A72"}, {{0x41, 0xD09}, "Cortex-A73"},
      {{0x41, 0xD0A}, "Cortex-A75"}, {{0x41, 0xD0B}, "Cortex-A76"}, {{0x41, 0xD0C}, "Neoverse-N1"},
      {{0x41, 0xD0D}, "Cortex-A77"}, {{0x41, 0xD41}, "Cortex-A78"}, {{0x41, 0xD42}, "Cortex-A78AE"},
      {{0x4E, 0x004}, "NVIDIA Carmel"}};
  std::map<std::string, std::string> fields;
  std::istringstream lines(read_text("/proc/cpuinfo").value_or(""));
  for (std::string line; std::getline(lines, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    key.erase(key.find_last_not_of(" \t") + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    fields.emplace(key, value);
  }
  if (!fields["model name"].empty()) return fields["model name"];
  try {
    auto core = arm_cores.find({std::stoi(fields.at("CPU implementer"), nullptr, 16),
                                std::stoi(fields.at("CPU part"), nullptr, 16)});
    if (core != arm_cores.end()) return std::string(core->second);
  } catch (const std::exception&) {
  }
  if (!fields["Hardware"].empty()) return fields["Hardware"];
  return std::nullopt;
}

inline std::vector<int> affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

inline std::string cpu_list(const std::vector<int>& cpus) {
  std::string out = "[";
  for (size_t i = 0; i < cpus.size(); ++i) out += (i ? ", " : "") + std::to_string(cpus[i]);
  return out + "]";
}

struct Request {  // one scheduling request and its outcome
  bool asked = false;
  std::optional<std::string> error;
};

inline Request pin(const std::vector<int>& cpus) {
  Request request{!cpus.empty(), std::nullopt};
  if (!request.asked) return request;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) request.error = std::strerror(errno);
  return request;
}

inline Request fifo(bool asked, int priority) {
  Request request{asked, std::nullopt};
  if (!asked) return request;
  sched_param param{};
  param.sched_priority = priority;
  if (sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
    int code = errno;
    request.error = std::strerror(code);
    if (code == EPERM) *request.error += " (needs CAP_SYS_NICE or an rtprio limit)";
  }
  return request;
}

inline Request mlock(bool asked) {
  Request request{asked, std::nullopt};
  if (!asked) return request;
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    int code = errno;
    request.error = std::strerror(code);
    if (code == EPERM || code == ENOMEM) *request.error += " (needs CAP_IPC_LOCK or a large enough memlock limit)";
  }
  return request;
}

inline std::string granted(const Request& r) { return r.asked ? flag(!r.error) : "null"; }

struct Requests {
  std::vector<int> pin_cpus;
  Request pin, fifo, mlock;
  int priority;
};

inline std::vector<std::string> refusals(const Requests& r) {
  std::vector<std::string> lines;
  if (r.pin.error) lines.push_back("pinning to CPUs " + cpu_list(r.pin_cpus) + " refused: " + *r.pin.error);
  if (r.fifo.error) lines.push_back("SCHED_FIFO priority " + std::to_string(r.priority) + " refused: " + *r.fifo.error);
  if (r.mlock.error) lines.push_back("mlockall refused: " + *r.mlock.error);
  return lines;
}

// Peak resident memory of this process image: VmHWM, because ru_maxrss keeps
// the high-water mark of the image before exec (a harness started from a large
// Python process would report that process's memory). ru_maxrss where /proc is absent.
inline long long peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // kB
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<long long>(usage.ru_maxrss) * 1024;
}

// The environment section of the results document.
inline std::string describe(int threads, const std::string& runtime, const std::string& runtime_version, const Requests& r,
                            const std::string& extra) {
  utsname name{};
  uname(&name);
  std::string version = name.version;
  std::optional<std::string> realtime = read_text("/sys/kernel/realtime");
  bool rt = version.find("PREEMPT_RT") != std::string::npos || version.find("PREEMPT RT") != std::string::npos ||
            realtime.value_or("") == "1";
  std::vector<int> cpus = affinity();
  std::ostringstream governors;
  for (size_t i = 0; i < cpus.size(); ++i) {
    std::string cpu = std::to_string(cpus[i]);
    governors << (i ? ", " : "") << quoted(cpu) << ": "
              << optional_text(read_text("/sys/devices/system/cpu/cpu" + cpu + "/cpufreq/scaling_governor"));
  }
  std::ostringstream out;
  out << "{\"os\": " << quoted(name.sysname) << ", \"kernel\": " << quoted(name.release)
      << ", \"kernel_version\": " << quoted(version) << ", \"rt_kernel\": " << flag(rt)
      << ", \"machine\": " << quoted(name.machine) << ", \"board\": " << optional_text(read_text("/proc/device-tree/model"))
      << ", \"cpu_model\": " << optional_text(cpu_model()) << ", \"cores_online\": " << sysconf(_SC_NPROCESSORS_ONLN)
      << ", \"affinity\": " << cpu_list(cpus) << ", \"cores_used\": " << cpus.size() << ", \"threads\": " << threads
      << ", \"governors\": {" << governors.str() << "}, \"runtime\": " << quoted(runtime)
      << ", \"runtime_version\": " << quoted(runtime_version) << ", \"pin\": " << (r.pin.asked ? cpu_list(r.pin_cpus) : "null")
      << ", \"pin_granted\": " << granted(r.pin) << ", \"pin_error\": " << optional_text(r.pin.error)
      << ", \"fifo_requested\": " << flag(r.fifo.asked) << ", \"fifo_granted\": " << granted(r.fifo)
      << ", \"fifo_priority\": " << (r.fifo.asked ? std::to_string(r.priority) : "null")
      << ", \"fifo_error\": " << optional_text(r.fifo.error) << ", \"mlock_requested\": " << flag(r.mlock.asked)
      << ", \"mlock_granted\": " << granted(r.mlock) << ", \"mlock_error\": " << optional_text(r.mlock.error)
      << ", \"extra\": " << extra << "}";
  return out.str();
}

}  // namespace env
