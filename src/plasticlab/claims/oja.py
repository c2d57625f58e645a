"""Claims of the Oja paper (*Oja's plasticity rule overcomes challenges of training neural networks under
biological constraints*, /work/shared/papers/oja-plasticity-rule.txt), experiments ``oja-*``.

The paper reports its figures as "mean values and error bars representing 98% confidence intervals computed via
bootstrapping over 500 samples" over 20 runs (Methods), so every Greater claim uses ``level=0.98``. It prints no
numbers for these figures; the one quantity it names ("max Re(eig W_rec) converges near unity") is a Numeric
with a tolerance. Accuracies are fractions (0-1), as our runs store them.

Measurement names carry the network they were measured on (``depth=10/...``, ``5:naive/...``) so a run of a
different network (e.g. a --quick run at 5 layers) says "not measured" instead of being judged as the paper's.
"""

from __future__ import annotations

from . import Greater, Numeric, register

PAPER = "oja"
LEVEL = 0.98  # the paper's 98% bootstrap confidence intervals
CHANCE = "chance_accuracy"  # 1 / (number of classes) per value: the reference of "still learns"
S6_MARGIN = -1 / 16  # "no improvement": a gain below 1/16 (about 6 accuracy points), exact in binary floating point


def greater(cid: str, experiment: str, where: str, statement: str, a: str, b: str, *, margin: float = 0.0,
            paired: bool = True, paper: str = PAPER) -> Greater:
    """"A above B (+ margin)" in the Oja paper, at its 98% level (``paper="meta"``: its meta-learning part)."""
    return Greater(cid, paper, experiment, where, statement, a=a, b=b, margin=margin, paired=paired, level=LEVEL)


def s6_claims(prefix: str, experiment: str, where: str, *, oja: str, sanger: str, base: str,
              statements: dict[str, str], paper: str = PAPER) -> list[Greater]:
    """Supplement S6 (Fig. S5) for one base rule: Sanger's term brings no gain over the base rule (``base``: its
    measurement; ``oja``, ``sanger``: the base rule with Oja's / Sanger's term), Oja's term does, and both still
    learn. ``statements``: the claim's words, by claim (oja_above_sanger, oja_gain, sanger_no_gain, sanger_learns,
    base_learns)."""
    orderings = {"oja_above_sanger": (oja, sanger, 0.0), "oja_gain": (oja, base, 0.0),
                 "sanger_no_gain": (base, sanger, S6_MARGIN), "sanger_learns": (sanger, CHANCE, 0.1),
                 "base_learns": (base, CHANCE, 0.1)}
    return [greater(f"{prefix}.{name}", experiment, where, statements[name], a, b, margin=margin, paper=paper)
            for name, (a, b, margin) in orderings.items()]


# --------------------------------------------------------------------------- oja-fig1 (Fig. 1a-b)
register(
    greater("oja.fig1b.bp_oja_above_bp", "oja-fig1", "Fig. 1b, MNIST, 10 layers",
            "for deeper networks (here, 10 layers), the hybrid rule provides a pronounced boost in validation "
            "accuracy compared to backprop alone",
            a="depth=10/bp+oja/final_accuracy", b="depth=10/bp/final_accuracy"),
    greater("oja.fig1a.bp_oja_below_bp", "oja-fig1", "Fig. 1a, MNIST, 5 layers",
            "for a five-layer network on MNIST, this hybrid rule achieves slightly lower accuracy than backprop alone",
            a="depth=5/bp/final_accuracy", b="depth=5/bp+oja/final_accuracy"),
    greater("oja.fig1a.bp_oja_only_slightly_below", "oja-fig1", "Fig. 1a, MNIST, 5 layers",
            "... *slightly* lower accuracy than backprop alone: BP+Oja is less than 1/16 (about 6 accuracy points) "
            "below BP (margin -1/16: our reading of 'slightly'; 1/16 rather than 0.05 so the margin is exact in "
            "binary floating point)",
            a="depth=5/bp+oja/final_accuracy", b="depth=5/bp/final_accuracy", margin=-1 / 16),
    greater("oja.fig1ab.bp_drops_with_depth", "oja-fig1", "Fig. 1a-b, MNIST, BP",
            "as the network depth increases, backprop's performance drops noticeably",
            a="depth=5/bp/final_accuracy", b="depth=10/bp/final_accuracy", paired=False),
)

# --------------------------------------------------------------------------- oja-lr-search (eq. 4: "chosen via grid search")
_SELECTED = "each rule at its validation-selected rates, test accuracy"
register(
    greater("oja.lr_search.depth10.bp_oja_above_bp", "oja-lr-search", f"eq. 4 / Fig. 1b, 10 layers, {_SELECTED}",
            "learning rates chosen via grid search; for deeper networks (10 layers) the hybrid rule provides a "
            "pronounced boost in validation accuracy compared to backprop alone",
            a="depth=10/bp+oja/test_accuracy", b="depth=10/bp/test_accuracy"),
    greater("oja.lr_search.depth5.bp_oja_below_bp", "oja-lr-search", f"eq. 4 / Fig. 1a, 5 layers, {_SELECTED}",
            "for a five-layer network on MNIST, this hybrid rule achieves slightly lower accuracy than backprop alone",
            a="depth=5/bp/test_accuracy", b="depth=5/bp+oja/test_accuracy"),
    greater("oja.lr_search.depth5.fa_oja_above_fa", "oja-lr-search", f"Fig. 6a / S6, 5 layers, FA, {_SELECTED}",
            "augmenting ... biologically inspired feedback alignment with Oja's rule leads to notable performance "
            "gains", a="depth=5/fa+oja/test_accuracy", b="depth=5/fa/test_accuracy"),
    Numeric("oja.lr_search.depth10.hebbian_grid_stable", PAPER, "oja-lr-search", "abstract / Fig. 1, 10 layers, "
            "every grid cell of a rule with the Oja (or Sanger) term",
            "incorporating Oja's rule into error-driven training yields stable, efficient learning",
            measure="depth=10/hebbian/diverged_cell_fraction", value=0.0, tolerance=1e-9,
            tolerance_reason="the paper claims stability without qualification: any diverged cell (a fraction of "
                             "at least 1/n_cells) contradicts it"),
)

# --------------------------------------------------------------------------- oja-fig2 (Fig. 2, S2, S5)
_F2 = "depth=10"
register(*[
    greater(f"oja.fig2a.residual_lower_l{l}", "oja-fig2", f"Fig. 2a, 10 layers, layer {l}",
            "incorporating the Oja's term substantially reduced residual error in each layer",
            a=f"{_F2}/bp/residual_l{l}", b=f"{_F2}/bp+oja/residual_l{l}")
    for l in range(1, 11)])
register(
    greater("oja.fig2c.optimal_map_reconstruction_closer", "oja-fig2", "Fig. 2c, 10 layers, input "
            "reconstructed from the last hidden layer by optimal linear maps",
            "under backprop, severe distortions often occurred ...; by contrast, the hybrid update retained "
            "substantially clearer digit identities (ours: relative MSE = MSE / mean ||x||^2, BP above BP+Oja)",
            a=f"{_F2}/bp/recon_rel_mse", b=f"{_F2}/bp+oja/recon_rel_mse"),
    greater("oja.s5.transpose_reconstruction_clearer", "oja-fig2", "S5 / Fig. S4, 10 layers, input "
            "reconstructed through W^T",
            "networks trained using the hybrid rule yielded substantially clearer reconstructions than those "
            "trained solely via backprop (ours: relative MSE, BP above BP+Oja)",
            a=f"{_F2}/bp/recon_T_rel_mse", b=f"{_F2}/bp+oja/recon_T_rel_mse"),
    greater("oja.s5.transpose_reconstruction_legible_bp_oja", "oja-fig2", "S5 / Fig. S4, 10 layers, BP+Oja",
            "BP+Oja's transposed reconstructions are legible (Fig. S4; ours: relative MSE below 0.5, i.e. the "
            "error's energy below half the digit's: above that the strokes are swamped by the error)",
            a="legibility_threshold_rel_mse", b=f"{_F2}/bp+oja/recon_T_rel_mse"),
    greater("oja.s5.transpose_reconstruction_illegible_bp", "oja-fig2", "S5 / Fig. S4, 10 layers, BP",
            "in the purely backprop-trained networks, transposed reconstructions were illegible (ours: relative "
            "MSE above 0.5)",
            a=f"{_F2}/bp/recon_T_rel_mse", b="legibility_threshold_rel_mse"),
    greater("oja.fig2d.pca_closer_to_input", "oja-fig2", "Fig. 2d, 10 layers, layer-1 activations",
            "the hybrid model spread variance more evenly across principal components and remained closer to the "
            "intrinsic variability of the input data (ours: |cumulative explained variance at 10 PCs - the "
            "input's|, BP above BP+Oja)",
            a=f"{_F2}/bp/pca10_gap_layer1", b=f"{_F2}/bp+oja/pca10_gap_layer1"),
)

# --------------------------------------------------------------------------- oja-fig3 (Fig. 3, S1)
_F3 = "depth=5/init=naive"
register(
    Numeric("oja.fig3.bp_near_chance", PAPER, "oja-fig3", "Fig. 3, MNIST, 5 layers, naive init, BP",
            "relying on backprop alone yielded minimal improvement in the accuracy of the classifier network, even "
            "after 5,000 training samples", measure=f"{_F3}/bp/final_accuracy", value=0.1, tolerance=0.05,
            tolerance_reason="read off Fig. 3: BP's curve stays at chance (1/10 on MNIST) over the 5,000 samples; "
                             "'minimal improvement' read as less than 5 accuracy points above it"),
    greater("oja.fig3.bp_oja_above_bp", "oja-fig3", "Fig. 3, MNIST, 5 layers, naive init",
            "incorporating Oja's rule alongside backprop dramatically enhanced performance",
            a=f"{_F3}/bp+oja/final_accuracy", b=f"{_F3}/bp/final_accuracy"),
    greater("oja.s1a.bp_activations_vanish", "oja-fig3", "S1a / S3c-d, naive init, last hidden layer",
            "when the network is initialized with unscaled weights, forward activations ... are severely "
            "diminished; Oja's rule ... preserves signal flow throughout the network (final ||h_{L-1}||, BP+Oja "
            "above BP)", a=f"{_F3}/bp+oja/norm_last_hidden", b=f"{_F3}/bp/norm_last_hidden"),
)
register(*[
    greater(f"oja.s1b.bp_step_minuscule_l{l}", "oja-fig3", f"S1b, naive init, layer {l}",
            "backprop step sizes still remain effectively zero throughout the layers (under BP; final "
            "||eta e_l h_{l-1}^T||, BP+Oja above BP)",
            a=f"{_F3}/bp+oja/step_bp_l{l}", b=f"{_F3}/bp/step_bp_l{l}")
    for l in range(1, 6)])

# --------------------------------------------------------------------------- oja-fig4 (Fig. 4, S3a-f)
register(*[
    greater(f"oja.fig4.norms_preserved.{sc.replace(':', '_')}", "oja-fig4", where,
            "Oja's rule similarly preserves activation norms in deep networks with nonlinearities (ours: mean over "
            "hidden layers of |log(||h_l|| / ||h_0||)|, BP above BP+Oja)",
            a=f"{sc}/bp/norm_drift", b=f"{sc}/bp+oja/norm_drift")
    for sc, where in (("10:xavier", "Fig. 4 / S3e-f, 10 layers"), ("5:xavier", "S3a-b, 5 layers"),
                      ("5:naive", "S3c-d, 5 layers, naive init"))])

# --------------------------------------------------------------------------- oja-fig5 (Fig. 5)
register(
    greater("oja.fig5b.bptt_oja_above_bptt", "oja-fig5", "Fig. 5b, delayed MNIST, leaky RNN",
            "RNNs trained with BPTT augmented by Oja's rule achieve significantly higher accuracy than those "
            "trained using BPTT alone", a="bptt+oja/final_accuracy", b="bptt/final_accuracy"),
    Numeric("oja.fig5d.max_real_eig_near_unity", PAPER, "oja-fig5", "Fig. 5d, BPTT+Oja, end of training",
            "under the hybrid regime, max Re(lambda) converges near unity", measure="bptt+oja/max_real_eig",
            value=1.0, tolerance=0.1,
            tolerance_reason="'near unity' is all the text says (no number); +-0.1 is the width of the band the "
                             "curve is read in on Fig. 5d"),
    greater("oja.fig5d.max_real_eig_less_variable", "oja-fig5", "Fig. 5d, spread over seeds",
            "converges near unity with low variance, whereas the BPTT-only model exhibits substantial variability "
            "(ours: per-seed |max Re(eig) - its seed mean|, BPTT above BPTT+Oja)",
            a="bptt/max_real_eig_absdev", b="bptt+oja/max_real_eig_absdev", paired=False),
    greater("oja.fig5e.imaginary_parts_to_zero", "oja-fig5", "Fig. 5e, final spectrum of W_rec",
            "the imaginary components of the eigenvalues are systematically driven toward zero; the eigenvalues in "
            "the BPTT model retain substantial imaginary components (mean |Im|, BPTT above BPTT+Oja)",
            a="bptt/mean_abs_imag", b="bptt+oja/mean_abs_imag"),
    greater("oja.fig5c.more_stimulus_information_in_delay", "oja-fig5", "Fig. 5c, PEV in the delay",
            "the BPTT+Oja model not only encodes higher stimulus-related information content but also preserves it "
            "more stably over extended delays (mean PEV over neurons, t > t_stim)",
            a="bptt+oja/pev_delay", b="bptt/pev_delay"),
    greater("oja.fig5c.information_more_stable_over_delay", "oja-fig5", "Fig. 5c, PEV over the delay",
            "... but also preserves it more stably over extended delays (ours: per seed |PEV at the last step - PEV "
            "at the first delay step|, mean over neurons; BPTT above BPTT+Oja)",
            a="bptt/pev_delay_drift", b="bptt+oja/pev_delay_drift"),
)

# --------------------------------------------------------------------------- oja-rnn-grid (Fig. 5 diagnosis)
# the paired (alpha, eta[, eta_oja]) comparisons of oja-rnn-grid's default grid: 3 leaks x 4 rates, and the Oja
# rates 1e-3 and 1e-2 beside the grid's 3e-3 at the chosen cell; "in some cell" is judged at the Bonferroni level
GRID_COMPARISONS = 14
register(
    greater("oja.fig5b.grid.accuracy_above_at_chosen", "oja-rnn-grid",
            "Fig. 5b, each rule at its own leak / rate chosen on validation (oja-rnn-grid), validation trials",
            "RNNs trained with BPTT augmented by Oja's rule achieve significantly higher accuracy than those "
            "trained using BPTT alone (each rule at the setting the validation search picks for it)",
            a="chosen/bptt+oja/val_accuracy", b="chosen/bptt/val_accuracy"),
    greater("oja.fig5c.grid.pev_above_at_chosen", "oja-rnn-grid",
            "Fig. 5c, each rule at its own leak / rate chosen on validation (oja-rnn-grid), validation trials",
            "the BPTT+Oja model ... encodes higher stimulus-related information content ... over extended delays "
            "(mean PEV over neurons, t > t_stim, each rule at its chosen setting)",
            a="chosen/bptt+oja/pev_delay", b="chosen/bptt/pev_delay"),
    Greater("oja.fig5c.grid.pev_above_in_some_cell", PAPER, "oja-rnn-grid",
            f"Fig. 5c, any of the {GRID_COMPARISONS} (alpha, eta, eta_oja) cells of oja-rnn-grid (Bonferroni)",
            "the paper's PEV ordering appears somewhere in the searched settings: in the cell where BPTT+Oja's delay "
            "PEV is furthest above BPTT's (same leak, rate and seeds), the difference is above 0 at the 98% level "
            f"corrected for the {GRID_COMPARISONS} cells compared",
            a="max_gap/bptt+oja/pev_delay", b="max_gap/bptt/pev_delay", paired=True,
            level=1 - (1 - LEVEL) / GRID_COMPARISONS),
)

# --------------------------------------------------------------------------- oja-fig6a (Fig. 6a, S3g-h)
register(
    greater("oja.fig6a.fa_norms_blow_up", "oja-fig6a", "Fig. 6a, 5 layers, FA",
            "exponential blowups in downstream layers caused by cumulative upstream expansion under FA (output "
            "layer's norm above the input's)", a="depth=5/fa/norm_output", b="depth=5/fa/norm_input"),
    greater("oja.fig6a.fa_oja_norms_bounded", "oja-fig6a", "Fig. 6a, 5 layers, FA+Oja",
            "by preventing unbounded norm growth, Oja's rule averts exponential blowups (ours: every layer's norm "
            "within a factor 2 of the input's, max_l |log2(||h_l||/||h_0||)| below 1)",
            a="log2_norm_factor", b="depth=5/fa+oja/max_abs_log2_norm_ratio"),
    greater("oja.fig6a.fa_oja_output_norm_below_fa", "oja-fig6a", "Fig. 6a, 5 layers, output layer",
            "Oja's rule averts exponential blowups in downstream layers (FA's output norm above FA+Oja's)",
            a="depth=5/fa/norm_output", b="depth=5/fa+oja/norm_output"),
)

# --------------------------------------------------------------------------- oja-sanger (S6)
for _base, _depth, _where in (("bp", 10, "S6 / Fig. S5, 10 layers, BP"), ("fa", 5, "S6 / Fig. S5, 5 layers, FA")):
    _p, _n = f"depth={_depth}", _base.upper()
    register(*s6_claims(
        f"oja.s6.{_base}", "oja-sanger", _where, oja=f"{_p}/{_base}+oja/final_accuracy",
        sanger=f"{_p}/{_base}+sanger/final_accuracy", base=f"{_p}/{_base}/final_accuracy", statements={
            "oja_above_sanger": f"Sanger's rule reveals no improvement over {_n} alone, in contrast to the "
                                f"substantial gains achieved by Oja's rule ({_n}+Oja above {_n}+Sanger)",
            "oja_gain": f"augmenting {_n} with Oja's rule leads to notable performance gains ({_n}+Oja above {_n})",
            "sanger_no_gain": f"no improvement over {_n} alone: {_n}+Sanger's gain over {_n} is below 1/16 "
                              "(non-superiority margin, about 6 accuracy points: the smallest gain we would call an "
                              "improvement, exact in binary floating point; the CI of "
                              f"{_n} - {_n}+Sanger must lie above -1/16)",
            "sanger_learns": f"{_n}+Sanger still learns: 'no improvement over {_n} alone', not a collapse (ours: "
                             "final accuracy at least 0.1 above chance 1/K)",
            "base_learns": f"{_n} alone learns (the reference of 'no improvement'; final accuracy at least 0.1 above "
                           "chance)"}))
