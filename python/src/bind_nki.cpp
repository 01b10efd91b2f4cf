// Python bindings for the NKI front end (submodule trnsim._trnsim.nki): a lean kernel builder
// the tracer in python/trnsim/nki/ drives, and runs that keep their timeline for traces and
// summaries. Everything still goes through isa::KernelBuilder (one way to make instructions)
// and sim::Chip (one simulator); this file only makes the calls cheap from Python:
//  - access patterns travel as flat tuples (tensor, partition_offset, partition_stride,
//    partitions, offset, stride0, count0, ...), so no Python object is made per operand;
//  - ALU ops, activation functions and engines travel as their enum numbers;
//  - errors are the classes of errors.cpp (CoreError is their base), which the front end turns
//    into its located exception classes (trnsim/nki/errors.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bind_fabric.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/isa/builder.h"
#include "trnsim/isa/names.h"
#include "trnsim/isa/text.h"
#include "trnsim/profile/summary.h"
#include "trnsim/profile/trace.h"
#include "trnsim/sim/chip.h"

namespace py = pybind11;
using namespace trnsim;

namespace {

using pybind::check;
using pybind::raiseStatus;
using pybind::unwrap;

int64_t asInt(PyObject* o) {
  const long long v = PyLong_AsLongLong(o);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

/// (tensor, poff, pstride, partitions, offset, s0, c0, ...) -> AccessPattern; None -> absent.
isa::AccessPattern apOf(const py::handle& h) {
  isa::AccessPattern ap;
  if (h.is_none()) return ap;
  PyObject* t = h.ptr();
  if (!PyTuple_Check(t)) throw py::type_error("access pattern must be a tuple");
  const Py_ssize_t n = PyTuple_GET_SIZE(t);
  if (n < 5 || (n - 5) % 2 != 0 || (n - 5) / 2 > isa::kMaxFreeDims)
    throw py::value_error("access pattern tuple has a bad length (at most 4 free dimensions)");
  ap.tensor = uint32_t(asInt(PyTuple_GET_ITEM(t, 0)));
  ap.partitionOffset = uint32_t(asInt(PyTuple_GET_ITEM(t, 1)));
  ap.partitionStride = asInt(PyTuple_GET_ITEM(t, 2));
  ap.partitions = uint32_t(asInt(PyTuple_GET_ITEM(t, 3)));
  ap.offset = asInt(PyTuple_GET_ITEM(t, 4));
  ap.numFree = uint8_t((n - 5) / 2);
  for (int k = 0; k < ap.numFree; ++k) {
    ap.free[size_t(k)].stride = asInt(PyTuple_GET_ITEM(t, 5 + 2 * k));
    ap.free[size_t(k)].count = asInt(PyTuple_GET_ITEM(t, 6 + 2 * k));
  }
  return ap;
}
/// A number (immediate) or an access-pattern tuple ([P, 1] tile).
isa::ScalarOperand scalarOf(const py::handle& h, float def = 0.0f) {
  if (h.is_none()) return def;
  if (PyTuple_Check(h.ptr())) return apOf(h);
  return float(PyFloat_AsDouble(h.ptr()));
}
isa::AluOp alu(int v) { return static_cast<isa::AluOp>(v); }
using RankLists = std::vector<std::vector<uint32_t>>;
arch::Engine eng(int v) { return static_cast<arch::Engine>(v); }

struct Builder {
  arch::ChipConfig chip;
  std::unique_ptr<isa::KernelBuilder> kb;
  std::vector<isa::Tensor> tensors;  // by id

  Builder(const std::string& chipName, const std::string& name)
      : chip(unwrap(arch::loadChip(chipName))),
        kb(std::make_unique<isa::KernelBuilder>(chip, name)) {}

  isa::KernelBuilder& b() {
    if (!kb) throw py::value_error("this kernel builder has already finished");
    return *kb;
  }
};
using BuilderPtr = std::shared_ptr<Builder>;

struct ProgramHolder {
  isa::Program program;
  /// The copy the ranks of a cluster share (made on the first cluster_load): loading it on
  /// more ranks copies and verifies nothing.
  std::shared_ptr<const isa::Program> shared;
};

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

  py::class_<ProgramHolder>(sub, "Program")
      .def_property_readonly("num_instructions",
                             [](const ProgramHolder& p) { return p.program.instructions.size(); })
      .def_property_readonly("name", [](const ProgramHolder& p) { return p.program.name; })
      .def("text", [](const ProgramHolder& p) { return isa::printProgram(p.program); });

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

  sub.def("load",
          [](sim::Chip& chip, const std::vector<ProgramHolder*>& programs) {
            auto rec = std::make_shared<RunRecord>();
            rec->config = chip.config();
            std::vector<isa::Program> ps;
            ps.reserve(programs.size());
            for (const ProgramHolder* p : programs) ps.push_back(p->program);
            check(chip.load(ps));
            rec->programs = std::move(ps);
            return rec;
          },
          py::arg("chip"), py::arg("programs"),
          "Loads one program per core; the record then takes the run's timeline (execute)");

  sub.def(
      "cluster_load",
      [](pybind::PyCluster& c, uint32_t rank, ProgramHolder& p) {
        if (!p.shared) p.shared = std::make_shared<const isa::Program>(p.program);
        check(c.cluster.load(rank, p.shared));
      },
      py::arg("cluster"), py::arg("rank"), py::arg("program"),
      "Loads a traced NKI program on one rank of a fabric.Cluster");

  sub.def("execute",
          [](sim::Chip& chip, const std::shared_ptr<RunRecord>& rec, bool values, bool timing,
             bool events, bool detectUninitialized, uint64_t seed, const std::string& rounding) {
            sim::RunOptions o;
            o.computeValues = values;
            o.computeTiming = timing;
            o.recordEvents = events && timing;
            o.detectUninitialized = detectUninitialized;
            o.seed = seed;
            auto r = numerics::parseRounding(rounding);
            if (!r) throw py::value_error("rounding must be 'rne' or 'stochastic'");
            o.rounding = *r;
            Expected<sim::RunResult> res = Status();
            {
              py::gil_scoped_release release;
              res = chip.run(o);
            }
            rec->result = unwrap(std::move(res));
          },
          py::arg("chip"), py::arg("record"), py::arg("values") = true, py::arg("timing") = true,
          py::arg("events") = false, py::arg("detect_uninitialized") = true, py::arg("seed") = 0,
          py::arg("rounding") = "rne");

  py::class_<Builder, BuilderPtr>(sub, "Builder")
      .def(py::init<const std::string&, const std::string&>(), py::arg("chip"), py::arg("name"))
      .def("declare",
           [](Builder& b, int space, const std::string& name, const std::string& dtype,
              std::vector<int64_t> shape, const std::string& kind) {
             auto dt = numerics::parseDType(dtype);
             if (!dt) throw py::value_error("unknown dtype '" + dtype + "'");
             isa::Tensor t;
             auto& kb = b.b();
             if (space == int(isa::MemSpace::kHbm)) {
               auto k = isa::parseTensorKindName(kind);
               if (!k) throw py::value_error("unknown tensor kind '" + kind + "'");
               t = kb.hbm(name, *dt, std::move(shape), *k);
             } else if (space == int(isa::MemSpace::kSbuf)) {
               t = kb.sbuf(name, *dt, std::move(shape));
             } else {
               t = kb.psum(name, *dt, std::move(shape));
             }
             if (!t.valid()) raiseStatus(kb.status());
             b.tensors.push_back(t);
             return t.id();
           })
      .def("release",
           [](Builder& b, uint32_t id) {
             if (b.kb) b.kb->release(isa::Tensor(b.kb.get(), id));
           })
      .def("set_location",
           [](Builder& b, const std::string& file, uint32_t line) { b.b().setLocation(file, line); })
      .def("sbuf_free_bytes", [](Builder& b) { return b.b().sbufFreeBytes(); })
      .def("psum_free_bytes", [](Builder& b) { return b.b().psumFreeBytes(); })
      .def("num_instructions", [](Builder& b) { return b.b().program().instructions.size(); })
      .def("finish",
           [](Builder& b) {
             auto p = b.b().finish();
             b.kb.reset();
             return ProgramHolder{unwrap(std::move(p))};
           })
      // ---- instructions: arguments in the builder's order, enums as numbers ----
      .def("nc_matmul",
           [](Builder& b, py::handle dst, py::handle st, py::handle mv, bool acc, bool dbl,
              bool tr) {
             isa::MatmulOptions o;
             o.accumulate = acc;
             o.doubleRow = dbl;
             o.isTranspose = tr;
             check(b.b().ncMatmul(apOf(dst), apOf(st), apOf(mv), o));
           })
      .def("nc_transpose",
           [](Builder& b, py::handle dst, py::handle data, int engine) {
             check(b.b().ncTranspose(apOf(dst), apOf(data), eng(engine)));
           })
      .def("activation",
           [](Builder& b, py::handle dst, int func, py::handle data, py::handle bias,
              py::handle scale, int reduceOp, py::handle reduceRes) {
             check(b.b().activation(apOf(dst), static_cast<isa::ActFunc>(func), apOf(data),
                                    apOf(bias), scalarOf(scale, 1.0f), alu(reduceOp),
                                    apOf(reduceRes)));
           })
      .def("tensor_tensor",
           [](Builder& b, py::handle dst, py::handle d1, py::handle d2, int op, int engine) {
             check(b.b().tensorTensor(apOf(dst), apOf(d1), apOf(d2), alu(op), eng(engine)));
           })
      .def("tensor_scalar",
           [](Builder& b, py::handle dst, py::handle data, int op0, py::handle s0, int op1,
              py::handle s1, bool r0, bool r1, int engine) {
             check(b.b().tensorScalar(apOf(dst), apOf(data), alu(op0), scalarOf(s0), alu(op1),
                                      scalarOf(s1), r0, r1, eng(engine)));
           })
      .def("scalar_tensor_tensor",
           [](Builder& b, py::handle dst, py::handle data, int op0, py::handle s0, int op1,
              py::handle data1, int engine) {
             check(b.b().scalarTensorTensor(apOf(dst), apOf(data), alu(op0), scalarOf(s0),
                                            alu(op1), apOf(data1), eng(engine)));
           })
      .def("tensor_reduce",
           [](Builder& b, py::handle dst, int op, py::handle data, uint32_t mask, bool negate,
              int engine) {
             check(b.b().tensorReduce(apOf(dst), alu(op), apOf(data), mask, negate, eng(engine)));
           })
      .def("tensor_partition_reduce",
           [](Builder& b, py::handle dst, int op, py::handle data) {
             check(b.b().tensorPartitionReduce(apOf(dst), alu(op), apOf(data)));
           })
      .def("tensor_copy",
           [](Builder& b, py::handle dst, py::handle src, int engine) {
             check(b.b().tensorCopy(apOf(dst), apOf(src), eng(engine)));
           })
      .def("tensor_copy_predicated",
           [](Builder& b, py::handle dst, py::handle src, py::handle pred, bool rev, int engine) {
             check(b.b().tensorCopyPredicated(apOf(dst), apOf(src), apOf(pred), rev, eng(engine)));
           })
      .def("tensor_tensor_scan",
           [](Builder& b, py::handle dst, py::handle d0, py::handle d1, py::handle init, int op0,
              int op1) {
             check(b.b().tensorTensorScan(apOf(dst), apOf(d0), apOf(d1), scalarOf(init), alu(op0),
                                          alu(op1)));
           })
      .def("memset",
           [](Builder& b, py::handle dst, float value, int engine) {
             check(b.b().memset(apOf(dst), value, eng(engine)));
           })
      .def("iota",
           [](Builder& b, py::handle dst, const std::vector<int64_t>& steps, float offset,
              float cm) { check(b.b().iota(apOf(dst), steps, offset, cm)); })
      .def("affine_select",
           [](Builder& b, py::handle dst, const std::vector<int64_t>& steps, float cm,
              float offset, int cmp, py::handle onTrue, float onFalse) {
             check(b.b().affineSelect(apOf(dst), steps, cm, offset, alu(cmp), apOf(onTrue),
                                      onFalse));
           })
      .def("range_select",
           [](Builder& b, py::handle dst, py::handle onTrue, int c0, int c1, py::handle b0,
              py::handle b1, float start, float onFalse, int reduceOp, py::handle reduceRes) {
             check(b.b().rangeSelect(apOf(dst), apOf(onTrue), alu(c0), alu(c1), apOf(b0),
                                     apOf(b1), start, onFalse, alu(reduceOp), apOf(reduceRes)));
           })
      .def("select_reduce",
           [](Builder& b, py::handle dst, py::handle pred, py::handle onTrue, py::handle onFalse,
              int reduceOp, py::handle reduceRes, bool rev) {
             check(b.b().selectReduce(apOf(dst), apOf(pred), apOf(onTrue), scalarOf(onFalse),
                                      alu(reduceOp), apOf(reduceRes), rev));
           })
      .def("bn_stats", [](Builder& b, py::handle dst,
                          py::handle data) { check(b.b().bnStats(apOf(dst), apOf(data))); })
      .def("bn_aggr", [](Builder& b, py::handle dst,
                         py::handle data) { check(b.b().bnAggr(apOf(dst), apOf(data))); })
      .def("reciprocal",
           [](Builder& b, py::handle dst, py::handle data, int engine) {
             check(b.b().reciprocal(apOf(dst), apOf(data), eng(engine)));
           })
      .def("max8", [](Builder& b, py::handle dst,
                      py::handle data) { check(b.b().max8(apOf(dst), apOf(data))); })
      .def("nc_find_index8",
           [](Builder& b, py::handle dst, py::handle data, py::handle vals) {
             check(b.b().ncFindIndex8(apOf(dst), apOf(data), apOf(vals)));
           })
      .def("nc_match_replace8",
           [](Builder& b, py::handle dst, py::handle data, py::handle vals, float imm,
              py::handle dstIdx) {
             check(b.b().ncMatchReplace8(apOf(dst), apOf(data), apOf(vals), imm, apOf(dstIdx)));
           })
      .def("local_gather",
           [](Builder& b, py::handle dst, py::handle src, py::handle index, int64_t perIdx,
              int64_t valid) {
             check(b.b().localGather(apOf(dst), apOf(src), apOf(index), perIdx, valid));
           })
      .def("dropout",
           [](Builder& b, py::handle dst, py::handle data, py::handle prob, int engine) {
             check(b.b().dropout(apOf(dst), apOf(data), scalarOf(prob), eng(engine)));
           })
      .def("rng", [](Builder& b, py::handle dst,
                     int engine) { check(b.b().rng(apOf(dst), eng(engine))); })
      .def("rand2",
           [](Builder& b, py::handle dst, py::handle lo, py::handle hi, int engine) {
             check(b.b().rand2(apOf(dst), scalarOf(lo), scalarOf(hi, 1.0f), eng(engine)));
           })
      .def("set_rng_seed", [](Builder& b, py::handle seeds,
                              int engine) { check(b.b().setRngSeed(apOf(seeds), eng(engine))); })
      .def("rand_set_state",
           [](Builder& b, py::handle seeds, int engine) {
             check(b.b().randSetState(apOf(seeds), eng(engine)));
           })
      .def("rand_get_state", [](Builder& b, py::handle dst,
                                int engine) { check(b.b().randGetState(apOf(dst), eng(engine))); })
      .def("dma_copy",
           [](Builder& b, py::handle dst, py::handle src, int queue, py::handle index,
              int indirect, bool oobSkip) {
             isa::DmaOptions o;
             o.queue = queue;
             o.index = apOf(index);
             o.indirectSrc = indirect == 1;
             o.indirectDst = indirect == 2;
             o.oobSkip = oobSkip;
             check(b.b().dmaCopy(apOf(dst), apOf(src), o));
           })
      .def("dma_transpose",
           [](Builder& b, py::handle dst, py::handle src, int queue) {
             check(b.b().dmaTranspose(apOf(dst), apOf(src), queue));
           })
      // ---- collectives (nki.collectives, nki.isa.sendrecv / core_barrier) ----
      // Replica groups travel as lists of rank lists ([] = every rank); the builder keeps
      // them in the program's table.
      .def("all_reduce",
           [](Builder& b, py::handle dst, py::handle src, int op, RankLists groups) {
             auto& kb = b.b();
             check(kb.allReduce(apOf(dst), apOf(src), alu(op), kb.replicaGroup(std::move(groups))));
           })
      .def("all_gather",
           [](Builder& b, py::handle dst, py::handle src, RankLists groups) {
             auto& kb = b.b();
             check(kb.allGather(apOf(dst), apOf(src), kb.replicaGroup(std::move(groups))));
           })
      .def("reduce_scatter",
           [](Builder& b, py::handle dst, py::handle src, int op, RankLists groups) {
             auto& kb = b.b();
             check(kb.reduceScatter(apOf(dst), apOf(src), alu(op),
                                    kb.replicaGroup(std::move(groups))));
           })
      .def("all_to_all",
           [](Builder& b, py::handle dst, py::handle src, RankLists groups) {
             auto& kb = b.b();
             check(kb.allToAll(apOf(dst), apOf(src), kb.replicaGroup(std::move(groups))));
           })
      .def("collective_permute",
           [](Builder& b, py::handle dst, py::handle src,
              const std::vector<std::pair<uint32_t, uint32_t>>& pairs) {
             auto& kb = b.b();
             check(kb.collectivePermute(apOf(dst), apOf(src), kb.permutePairs(pairs)));
           })
      .def("sendrecv",
           [](Builder& b, py::handle dst, py::handle src, uint32_t sendTo, uint32_t recvFrom,
              uint32_t pipeId) {
             check(b.b().sendRecv(apOf(dst), apOf(src), sendTo, recvFrom, pipeId));
           })
      .def("core_barrier", [](Builder& b, RankLists groups, py::handle data) {
        auto& kb = b.b();
        check(kb.coreBarrier(kb.replicaGroup(std::move(groups)), apOf(data)));
      });
}
