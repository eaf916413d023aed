"""Adversarial heads with input dropout on planted-signal data (docs/method.md, "Input dropout").

Synthetic data of ``tests/test_adversarial.py`` (1,200 users, an attribute planted linearly),
λ = 0.2, 5 head steps; held-out logistic attacker ROC-AUC (30 % of users) and validation
HR@10, for each objective and dropout rate. One seed, one thread:

    python benchmarks/defences/input_dropout.py
"""

from __future__ import annotations

from privrec.data.split import leave_last_out
from privrec.data.synthetic import make_synthetic
from privrec.defences.adversarial.adversary import AdversarySpec
from privrec.runs.pipeline import train_and_evaluate
from privrec.runs.run_spec import RunSpec
from privrec.training import TrainConfig


def _auc(vectors, labels) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(
        vectors, labels, test_size=0.3, stratify=labels, random_state=0
    )
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return float(roc_auc_score(yte, clf.predict_proba(xte)[:, 1]))


def main() -> None:
    ds = make_synthetic(n_users=1200, n_items=200, density=0.08, strength=0.6, seed=2)
    split = leave_last_out(ds.interactions)
    labels = ds.attributes["attr"].values
    cfg = TrainConfig(
        embedding_size=16,
        epochs=25,
        batch_size=1024,
        learning_rate=0.01,
        patience=5,
        num_threads=1,
    )
    print("objective  dropout  validation HR@10  logistic AUC")
    for objective, rate in [("none", 0.0)] + [
        (o, r) for o in ("confusion", "reverse") for r in (0.0, 0.3, 0.5)
    ]:
        adversary = (
            None
            if objective == "none"
            else AdversarySpec({"attr": 0.2}, steps=5, input_dropout=rate, objective=objective)
        )
        spec = RunSpec(dataset=ds.name, train=cfg, adversary=adversary, attackers=None, seed=0)
        metrics, model = train_and_evaluate(spec, ds, split)
        hr, auc = metrics["validation"]["hr@10"], _auc(model.user_vectors(), labels)
        print(f"{objective:<10} {rate:>7.1f}  {hr:>16.3f}  {auc:>12.3f}")


if __name__ == "__main__":
    main()
