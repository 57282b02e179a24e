//! Corpus BLEU against sacrebleu (`tests/fixtures/make_eval.py`): score, n-gram counts, lengths,
//! precisions and brevity penalty, on ordinary corpora and on the edges (no overlap, trailing
//! whitespace, Python's whitespace set, empty hypotheses).

mod common;

use ember_lm::eval::corpus_bleu;

#[test]
fn corpus_bleu_matches_sacrebleu() {
    let fixture = common::json_fixture("eval/bleu.json");
    let strings = common::json_strings;
    for (name, case) in fixture.as_object().unwrap() {
        let hyps = strings(&case["hyps"]);
        let refs: Vec<Vec<String>> = case["refs"].as_array().unwrap().iter().map(strings).collect();
        let b = corpus_bleu(&hyps, &refs).unwrap();
        let n = |k: &str| -> Vec<usize> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        assert_eq!(b.counts.to_vec(), n("counts"), "{name} counts");
        assert_eq!(b.totals.to_vec(), n("totals"), "{name} totals");
        assert_eq!(
            (b.sys_len, b.ref_len),
            (
                case["sys_len"].as_u64().unwrap() as usize,
                case["ref_len"].as_u64().unwrap() as usize
            ),
            "{name} lengths"
        );
        let floats = |k: &str| -> Vec<f64> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        for (got, want) in b.precisions.iter().zip(floats("precisions")) {
            assert!(
                (got - want).abs() < 1e-9 * want.max(1.0),
                "{name} precisions {:?}",
                b.precisions
            );
        }
        let bp = case["bp"].as_f64().unwrap();
        assert!((b.bp - bp).abs() < 1e-12, "{name} bp {} vs sacrebleu {bp}", b.bp);
        let expected = case["score"].as_f64().unwrap();
        assert!(
            (b.score - expected).abs() < 1e-9 * expected.max(1.0),
            "{name}: {} vs sacrebleu {expected}",
            b.score
        );
    }
    assert!(corpus_bleu(&["a".to_string()], &[vec![]]).is_err());
}
