// OOD detection metrics from two score sets (docs/methods.md, "Metrics"). Convention: a score is
// higher for in-distribution (ID). All figures are fractions in [0, 1] (callers format
// percentages), computed from one sort of all scores, exactly on ties and for any sample sizes
// (no threshold sweep). Scores are doubles; +-inf are allowed (equal infinities tie), NaN is not.
//
// Notation: n = #ID, m = #OOD. The ROC/PR "points" are the distinct score values t of the
// union of both sets; the classifier at point t calls a sample ID iff score >= t.
//
// - auroc: P(id > ood) + 0.5 P(id == ood) over all n*m pairs (the Mann-Whitney statistic, which
//   is also the trapezoidal area under the exact ROC step curve, sklearn's roc_auc_score).
//   Counted in integers, so it is exact up to the final division.
// - aupr_in: average precision with ID positive and the score as is:
//   AP = sum over points t, in descending order, of (R(t) - R(t_prev)) * P(t) with
//   R(t) = #{id >= t} / n and P(t) = #{id >= t} / #{all >= t} (sklearn's
//   average_precision_score; no interpolation).
// - aupr_out: the same with OOD positive and the scores negated (points in ascending order,
//   R(t) = #{ood <= t} / m, P(t) = #{ood <= t} / #{all <= t}).
// - fpr_at_95_tpr (the classic definition of the seeds' code): the fraction of OOD scored at or
//   above the threshold that keeps 95% of ID. The threshold is chosen exactly as the sort-based
//   `fpr_and_fdr_at_recall` of the Outlier-Exposure / Energy code (Hendrycks et al.; copied
//   into many later codebases: ReAct, DICE, KNN, ASH, ...) with ID as the positive class:
//     1. consider the points t from the highest score down to the highest point with
//        #{id >= t} = n (the lowest ID score); recall r(t) = #{id >= t} / n (in double);
//     2. pick the point whose |r(t) - 0.95| (in double) is smallest; on equal distance the
//        one with the larger recall; among points with the same recall the LOWEST t (the one
//        with the most OOD above it);
//     3. fpr = #{ood >= t} / m.
//   Why this rule and not "the largest t with #{id >= t} >= ceil(0.95 n)": when 0.95 n is an
//   integer K and the K-th and (K+1)-th highest ID scores differ, every threshold between
//   them keeps exactly 95% of ID, and the reference code takes the lowest one, so OOD samples
//   strictly between the (K+1)-th and K-th ID scores ARE counted as false positives:
//   fpr = #{ood > s_(K+1)} / m, where s_(j) is the j-th highest ID score (s_(n+1) = -inf
//   reads as #{ood >= s_(n)}). The "largest t" rule would give #{ood >= s_(K)} / m instead and
//   disagree with every published number computed with that code. When no point has recall
//   exactly 0.95 (0.95 n not an integer, or a tie block of ID scores straddles the 95% rank)
//   the rule takes the nearest recall, which may be slightly below 0.95: classic_tpr reports
//   the recall actually used. (The original ODIN code instead averages the FPR over a grid of
//   thresholds whose TPR lies in [0.9495, 0.9505]; that sweep is not reproduced.)
// - fpr_at_95_tpr_openood (OpenOOD v1.5 / pytorch-ood convention; OOD is the positive class):
//   scan the points t in ascending order; the first t with #{ood <= t} / m >= 0.95 (in double)
//   catches 95% of OOD; fpr = #{id <= t} / n, the fraction of ID flagged as OOD there. This is
//   fpr[argmax(tpr >= 0.95)] of sklearn's roc_curve(is_ood, -score, drop_intermediate=False).
//   (OpenOOD calls roc_curve with the default drop_intermediate=True, which can drop a collinear
//   ROC point and report the next one; that only happens when consecutive tie blocks hold
//   identical numbers of ID and OOD samples, e.g. with heavily quantised scores.)
//   The two FPR figures answer different questions and are not interchangeable.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::ood {

struct OodMetrics {
  double auroc = 0;                  // ID positive, ties count half
  double aupr_in = 0;                // average precision, ID positive, score as is
  double aupr_out = 0;               // average precision, OOD positive, score negated
  double fpr_at_95_tpr = 0;          // classic: fraction of OOD kept at the 95%-of-ID threshold
  double fpr_at_95_tpr_openood = 0;  // OpenOOD/pytorch-ood: fraction of ID flagged at 95% OOD caught
  // Diagnostics of the two FPR figures: the threshold t used (samples with score >= t are
  // called ID; for the OpenOOD figure samples with score <= t are called OOD) and the rate
  // actually reached there (classic: fraction of ID with score >= t, nearest to 0.95;
  // OpenOOD: fraction of OOD with score <= t, >= 0.95).
  double classic_threshold = 0;
  double classic_tpr = 0;
  double openood_threshold = 0;
  double openood_tpr = 0;
  int64_t n_id = 0;
  int64_t n_ood = 0;
};

// Throws oodkit::Error when a set is empty or a score is NaN (naming the set and the index).
OodMetrics compute_ood_metrics(const std::vector<double>& id_scores, const std::vector<double>& ood_scores);
// The same from score tensors of any shape (flattened), float32/float64 on any device
// (float32 scores convert to double exactly, so ties are preserved).
OodMetrics compute_ood_metrics(const Tensor& id_scores, const Tensor& ood_scores);

// The decision threshold that keeps `keep_percent` percent of `id_scores` (held-out ID images):
// the largest t with #{s >= t} >= ceil(n * keep_percent / 100), i.e. the ceil(n * p / 100)-th
// largest score (integer arithmetic, no rounding of p / 100). An image is called ID when its score
// is >= t, OOD below. Throws on an empty list, a NaN score or keep_percent outside (0, 100].
double id_threshold(const std::vector<double>& id_scores, int keep_percent = 95);

}  // namespace oodkit::ood
