// Python bindings for the NKI front end (submodule trnsim._trnsim.nki): runs that keep their
// timeline for traces and summaries. Programs are built with the one kernel builder binding,
// trnsim._trnsim.sim.KernelBuilder (bind_builder.cpp), which the tracer in python/trnsim/nki/
// drives with its cheap operand forms; everything still goes through isa::KernelBuilder (one
// way to make instructions) and sim::Chip (one simulator). Errors are the classes of
// errors.cpp (CoreError is their base), which the front end turns into its located exception
// classes (trnsim/nki/errors.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bind_fabric.h"
#include "builder.h"
#include "chip_io.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/profile/summary.h"
#include "trnsim/profile/trace.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::unwrap;

/// A finished run: the chip's config, its programs and the recorded timeline.
struct RunRecord {
  arch::ChipConfig config;
  std::vector<isa::Program> programs;
  sim::RunResult result;
};

}  // namespace

void bindNki(py::module_& m) {
  auto sub = m.def_submodule("nki", "Lean builder and run bindings for the trnsim.nki front end");
  sub.attr("CoreError") = pybind::errorClass(ErrorCode::kOk);  // errors.cpp: every core error

  py::class_<RunRecord, std::shared_ptr<RunRecord>>(sub, "RunRecord")
      .def_property_readonly("simulated_ns",
                             [](const RunRecord& r) { return r.result.simulatedNs; })
      .def_property_readonly("instructions",
                             [](const RunRecord& r) { return r.result.instructions; })
      .def_property_readonly("host_seconds",
                             [](const RunRecord& r) { return r.result.hostSeconds; })
      .def("summary_json",
           [](const RunRecord& r) {
             return profile::summaryJson(unwrap(profile::summarize(r.config, r.result)));
           })
      .def("summary_text",
           [](const RunRecord& r) {
             return profile::formatSummary(unwrap(profile::summarize(r.config, r.result)));
           })
      .def("write_trace", [](const RunRecord& r, const std::string& path) {
        check(profile::writeTrace(
            path, profile::singleChipTrace(r.config, r.programs, r.result.timeline)));
      });

  sub.def("chip_info", [](const std::string& name) {
    const arch::ChipConfig c = unwrap(arch::loadChip(name));
    py::dict d;
    d["name"] = c.name;
    d["cores"] = c.coresPerChip;
    d["partitions"] = c.mem.sbufPartitions;
    d["sbuf_bytes_per_partition"] = c.mem.sbufBytesPerPartition;
    d["psum_banks"] = c.mem.psumBanks;
    d["psum_bank_bytes"] = c.mem.psumBankBytesPerPartition;
    d["pe_rows"] = c.pe.rows;
    d["pe_cols"] = c.pe.cols;
    d["pe_max_moving_free"] = c.pe.maxMovingFree;
    d["fp8_speedup"] = c.pe.fp8Speedup;
    return d;
  });

  sub.def(
      "load",
      [](sim::Chip& chip, const std::vector<pybind::PyProgram*>& programs) {
        auto rec = std::make_shared<RunRecord>();
        rec->config = chip.config();
        std::vector<isa::Program> ps;
        ps.reserve(programs.size());
        for (const pybind::PyProgram* p : programs) ps.push_back(p->program);
        check(chip.load(ps));
        rec->programs = std::move(ps);
        return rec;
      },
      py::arg("chip"), py::arg("programs"),
      "Loads one program per core; the record then takes the run's timeline (execute)");

  sub.def(
      "cluster_load",
      [](pybind::PyCluster& c, uint32_t rank, pybind::PyProgram& p) {
        if (!p.shared) p.shared = std::make_shared<const isa::Program>(p.program);
        check(c.cluster.load(rank, p.shared));
      },
      py::arg("cluster"), py::arg("rank"), py::arg("program"),
      "Loads a traced NKI program on one rank of a fabric.Cluster");

  sub.def(
      "execute",
      [](sim::Chip& chip, const std::shared_ptr<RunRecord>& rec, bool values, bool timing,
         bool events, bool detectUninitialized, uint64_t seed, const std::string& rounding,
         uint32_t threads) {
        sim::RunOptions o;
        o.computeValues = values;
        o.computeTiming = timing;
        o.recordEvents = events && timing;
        o.detectUninitialized = detectUninitialized;
        o.seed = seed;
        o.threads = threads;
        rec->result = pybind::runChip(chip, o, rounding);
      },
      py::arg("chip"), py::arg("record"), py::arg("values") = true, py::arg("timing") = true,
      py::arg("events") = false, py::arg("detect_uninitialized") = true, py::arg("seed") = 0,
      py::arg("rounding") = "rne", py::arg("threads") = 0,
      "Runs the loaded programs into the record; threads: host threads for the functional "
      "work inside one instruction (0 = one per host core; the values and timing are the same "
      "for any count)");
}
