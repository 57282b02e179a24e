//! Tokenizers: byte-level BPE against Hugging Face (`tests/fixtures/make_tokenizers.py`, Python
//! `tokenizers` with Oniguruma, against ours with fancy-regex), round trips as property tests,
//! streaming decode, save/load, and errors.

mod common;

use ember_lm::Error;
use ember_lm::data::{BpeTokenizer, CharTokenizer, DecodeStream, SplitMix64, Tokenizer, WordTokenizer};

fn gpt2_tiny() -> BpeTokenizer {
    BpeTokenizer::from_file(common::fixture_path("gpt2-tiny/tokenizer.json")).unwrap()
}

/// Random strings mixing ASCII, whitespace runs, accents, CJK, emoji and combining marks.
fn random_strings(n: usize, seed: u64) -> Vec<String> {
    const POOL: &[&str] = &[
        "a", "b", "Z", " ", "  ", "\n", "\t", "'s", "'ll", "0", "42", ".", "!?", "é", "e\u{301}", "ß", "東",
        "京", "🙂", "👍🏽", "Ж", "—", "\u{0}", "\r\n", "ﬁ", "𝔘",
    ];
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let len = rng.below(20) as usize;
            let mut s: String = (0..len)
                .map(|_| POOL[rng.below(POOL.len() as u64) as usize])
                .collect();
            // And arbitrary scalar values.
            for _ in 0..rng.below(3) {
                if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                    s.push(c);
                }
            }
            s
        })
        .collect()
}

#[test]
fn bpe_matches_hugging_face_on_the_fixture() {
    let tok = gpt2_tiny();
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture_path("tokenizers/cases.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(tok.vocab_size(), fixture["vocab_size"].as_u64().unwrap() as usize);
    let eot = tok.inner().token_to_id(ember_lm::data::END_OF_TEXT).unwrap();
    assert_eq!(tok.special_tokens().eos, Some(eot));
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.encode(text).unwrap(), ids, "encoding {text:?}");
        assert_eq!(
            tok.decode(&ids).unwrap(),
            case["decoded"].as_str().unwrap(),
            "decoding {text:?}"
        );
    }
}

#[test]
fn byte_level_bpe_round_trips_every_string() {
    let fixture = gpt2_tiny();
    let corpus = "the cat sat on the mat. the dog sat on the log. 🙂 café ".repeat(50);
    let trained = BpeTokenizer::train([corpus.as_str()], 300, 2).unwrap();
    // At most the requested size (training stops when no pair occurs twice), more than the bytes.
    assert!(
        (258..=300).contains(&trained.vocab_size()),
        "{}",
        trained.vocab_size()
    );
    for tok in [&fixture, &trained] {
        for s in random_strings(300, 7) {
            let ids = tok.encode(&s).unwrap();
            assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
            assert_eq!(tok.decode(&ids).unwrap(), s, "round trip of {s:?}");
        }
    }
    // Training merged something: the corpus's words are single tokens or few.
    assert!(trained.encode("the cat sat").unwrap().len() < "the cat sat".len());
    // Saved and loaded, the same encodings.
    let path = std::env::temp_dir().join(format!("ember-bpe-{}.json", std::process::id()));
    trained.save(&path).unwrap();
    let loaded = BpeTokenizer::from_file(&path).unwrap();
    for s in random_strings(50, 8) {
        assert_eq!(loaded.encode(&s).unwrap(), trained.encode(&s).unwrap());
    }
    std::fs::write(&path, b"{ not json").unwrap();
    assert!(matches!(BpeTokenizer::from_file(&path), Err(Error::Load { .. })));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn char_and_word_tokenizers_round_trip() {
    let corpus = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    let chars = CharTokenizer::from_corpus(corpus).unwrap();
    assert_eq!(
        chars.vocab_size(),
        corpus.chars().collect::<std::collections::BTreeSet<_>>().len()
    );
    // Every string over the corpus's alphabet.
    let alphabet: Vec<char> = (0..chars.vocab_size() as u32)
        .map(|i| chars.id_to_token(i).unwrap().chars().next().unwrap())
        .collect();
    let mut rng = SplitMix64::new(3);
    for _ in 0..200 {
        let s: String = (0..rng.below(40))
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        assert_eq!(chars.decode(&chars.encode(&s).unwrap()).unwrap(), s);
    }
    let err = chars.encode("hear me, Zed").unwrap_err();
    assert!(
        err.to_string().contains("'Z'") && err.to_string().contains("byte 9"),
        "{err}"
    );
    let lenient = chars.clone().with_unk();
    let ids = lenient.encode("Zed").unwrap();
    assert_eq!(ids[0] as usize, lenient.vocab_size() - 1);

    let words = WordTokenizer::from_corpus([corpus, "hear me now", "me me"], 2, false).unwrap();
    assert_eq!(words.id_to_token(4).as_deref(), Some("me"), "most frequent first");
    assert_eq!(words.vocab_size(), 4 + 2, "me and hear appear twice or more");
    let ids = words.encode("hear  me\nout").unwrap();
    assert_eq!(ids, vec![5, 4, 1]);
    assert_eq!(words.decode(&ids).unwrap(), "hear me <unk>");
    assert_eq!(
        words.decode(&words.encode("me hear me").unwrap()).unwrap(),
        "me hear me"
    );

    // Save / load.
    let dir = std::env::temp_dir().join(format!("ember-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    chars.save(dir.join("c.json")).unwrap();
    assert_eq!(CharTokenizer::load(dir.join("c.json")).unwrap(), chars);
    words.save(dir.join("w.json")).unwrap();
    assert_eq!(
        WordTokenizer::load(dir.join("w.json"))
            .unwrap()
            .encode("me hear")
            .unwrap(),
        vec![4, 5]
    );
    std::fs::write(dir.join("bad.json"), br#"{"chars": ["b", "a"], "unk": false}"#).unwrap();
    assert!(matches!(
        CharTokenizer::load(dir.join("bad.json")),
        Err(Error::Load { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn out_of_vocabulary_ids_are_errors_or_explicit_replacements() {
    let tok = gpt2_tiny();
    let ids = tok.encode("hello").unwrap();
    let mut bad = ids.clone();
    bad.push(9999);
    assert!(matches!(
        tok.decode(&bad),
        Err(Error::TokenId {
            found: 9999,
            vocab_size: 512
        })
    ));
    assert_eq!(tok.decode_lossy(&bad), "hello\u{FFFD}");
    let chars = CharTokenizer::from_corpus("ab").unwrap();
    assert!(matches!(
        chars.decode(&[0, 2]),
        Err(Error::TokenId { found: 2, .. })
    ));
}

#[test]
fn streaming_decode_never_splits_a_character() {
    let tok = gpt2_tiny();
    for s in random_strings(200, 11)
        .into_iter()
        .chain(["🙂👍🏽 東京 e\u{301}!".to_string()])
    {
        let ids = tok.encode(&s).unwrap();
        let mut stream = DecodeStream::new(&tok);
        let mut pieces = Vec::new();
        for &id in &ids {
            if let Some(piece) = stream.push(id).unwrap() {
                // A piece is a whole number of characters, none of them an incomplete sequence.
                assert!(
                    !piece.contains('\u{FFFD}') || s.contains('\u{FFFD}'),
                    "{piece:?} from {s:?}"
                );
                pieces.push(piece);
            }
        }
        pieces.push(stream.finish().unwrap());
        assert_eq!(pieces.concat(), s);
    }
    // A multi-byte character split over several byte tokens comes out whole, once.
    let emoji = "🙂";
    let ids = tok.encode(emoji).unwrap();
    assert!(ids.len() > 1, "the fixture has no merge for this emoji");
    let mut stream = DecodeStream::new(&tok);
    let outs: Vec<Option<String>> = ids.iter().map(|&i| stream.push(i).unwrap()).collect();
    assert_eq!(outs.iter().flatten().cloned().collect::<String>(), emoji);
    assert!(outs[..outs.len() - 1].iter().all(Option::is_none));
}

/// Text that spells a special token: `encode` gives the special token (which decoding drops), as
/// Hugging Face does; `encode_literal` takes the spelling as text, equal to `tokenizers` with
/// `encode_special_tokens` (fixture `tests/fixtures/make_literal_special.py`), and round-trips.
#[test]
fn special_token_spellings_encode_literally_when_asked() {
    let tok = gpt2_tiny();
    let text = std::fs::read_to_string(common::fixture_path("tokenizers/literal_special.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect()
    };
    for case in &cases {
        let s = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(s).unwrap(), ids(&case["encode"]), "encode {s:?}");
        let literal = tok.encode_literal(s).unwrap();
        assert_eq!(literal, ids(&case["encode_literal"]), "encode_literal {s:?}");
        assert_eq!(tok.decode(&literal).unwrap(), s, "literal round trip of {s:?}");
    }
    // The special token itself decodes to nothing: the plain round trip loses it.
    assert_eq!(tok.decode(&tok.encode("a<|endoftext|>b").unwrap()).unwrap(), "ab");
    // Every random string round-trips through encode_literal, special spellings or not.
    for s in random_strings(100, 9) {
        let s = format!("{s}<|endoftext|>{s}");
        assert_eq!(tok.decode(&tok.encode_literal(&s).unwrap()).unwrap(), s);
    }
    // The word tokenizer: a word spelled like a special token is unknown, not the token.
    let words = WordTokenizer::from_corpus(["the cat", "the dog"], 1, true).unwrap();
    let unk = words.special_tokens().unk.unwrap();
    assert_eq!(words.encode_literal("the <pad> cat").unwrap()[1], unk);
    assert_eq!(
        words.encode("the <pad> cat").unwrap()[1],
        words.special_tokens().pad.unwrap()
    );
}

/// A pretrained encoder's tokenizer (BERT WordPiece, RoBERTa byte-level BPE) against
/// transformers' tokenizer call (`tests/fixtures/make_encoder_tokenizers.py`): ids, token types,
/// attention masks and character offsets, for accents, Chinese characters, unknown characters,
/// an empty text, whitespace runs, pairs, truncation and both paddings; and decoding.
#[test]
fn encoder_tokenizers_match_transformers() {
    use ember_lm::data::{EncodeOptions, EncoderTokenizer, Padding};
    let cases = common::json_fixture("encoder_tokenizers/cases.json");
    let strings = common::json_strings;
    let matrix = |v: &serde_json::Value| -> Vec<u32> { common::json_rows(v).concat() };
    for name in ["wordpiece", "roberta"] {
        let tok =
            EncoderTokenizer::from_pretrained(common::fixture_path(&format!("encoder_tokenizers/{name}")))
                .unwrap();
        assert!(tok.mask_token_id().is_some(), "{name}");
        let mut checked = 0;
        for case in cases[name].as_array().unwrap() {
            let texts = strings(&case["texts"]);
            let options = EncodeOptions {
                max_length: case["max_length"].as_u64().map(|n| n as usize),
                padding: if case["padding"] == "max_length" {
                    Padding::MaxLength
                } else {
                    Padding::Longest
                },
                add_special_tokens: true,
            };
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let got = if case["pairs"].is_null() {
                tok.encode_batch(&texts, &options).unwrap()
            } else {
                let seconds = strings(&case["pairs"]);
                let pairs: Vec<(&str, &str)> = texts
                    .iter()
                    .copied()
                    .zip(seconds.iter().map(String::as_str))
                    .collect();
                tok.encode_pairs(&pairs, &options).unwrap()
            };
            let what = format!("{name} {options:?} pairs={}", !case["pairs"].is_null());
            assert_eq!(
                got.batch.input_ids,
                matrix(&case["input_ids"]),
                "{what}: input_ids"
            );
            assert_eq!(
                got.batch.token_type_ids,
                matrix(&case["token_type_ids"]),
                "{what}: token_type_ids"
            );
            assert_eq!(
                got.batch.attention_mask,
                matrix(&case["attention_mask"]),
                "{what}: attention_mask"
            );
            // [[start, end], ...] per row.
            let offsets: Vec<Vec<(usize, usize)>> = case["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    common::json_rows(r)
                        .iter()
                        .map(|o| (o[0] as usize, o[1] as usize))
                        .collect()
                })
                .collect();
            assert_eq!(got.offsets, offsets, "{what}: offsets");
            checked += 1;
        }
        assert_eq!(checked, 6, "{name}");
        // Decoding skips the special tokens, as transformers' skip_special_tokens=True.
        let expected = strings(&cases[format!("{name}_decode")]);
        for (text, want) in strings(&cases["wordpiece"][0]["texts"]).iter().zip(&expected) {
            let ids = tok
                .encode_batch(&[text], &EncodeOptions::default())
                .unwrap()
                .batch
                .input_ids;
            assert_eq!(&tok.decode(&ids).unwrap(), want, "{name}: {text:?}");
        }
        // Bad options and input are typed errors.
        let no_max = EncodeOptions {
            padding: Padding::MaxLength,
            ..Default::default()
        };
        assert!(matches!(
            tok.encode_batch(&["a"], &no_max),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            tok.encode_batch(&[], &EncodeOptions::default()),
            Err(Error::Data(_))
        ));
        let bare = EncodeOptions {
            add_special_tokens: false,
            ..Default::default()
        };
        // An empty text without special tokens is a row of padding only.
        assert!(matches!(tok.encode_batch(&["", "a"], &bare), Err(Error::Data(_))));
    }
    assert!(matches!(
        EncoderTokenizer::from_pretrained(common::fixture_path("encoders")),
        Err(Error::Load { .. })
    ));
}

/// A WordPiece tokenizer trained here: BERT's special tokens first, `[CLS] a [SEP] b [SEP]`
/// templates with token types, lowercased round trips, and `save_pretrained` /
/// `from_pretrained` giving the same encodings.
#[test]
fn trained_wordpiece_tokenizers_encode_as_bert_and_reload() {
    use ember_lm::data::{EncodeOptions, EncoderTokenizer};
    let corpus = [
        "The quick brown fox jumps over the lazy dog.",
        "Transformers read text; tokenizers cut it into pieces!",
        "Padding, truncation and pairs: the first day of a new user.",
    ];
    let tok = EncoderTokenizer::train_wordpiece(&corpus, 150).unwrap();
    assert!(tok.vocab_size() <= 150);
    for (id, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().enumerate() {
        assert_eq!(tok.id_to_token(id as u32).as_deref(), Some(*t));
    }
    let enc = tok
        .encode_pairs(&[("the quick fox", "lazy dog")], &EncodeOptions::default())
        .unwrap();
    let ids = &enc.batch.input_ids;
    assert_eq!((ids[0], ids[ids.len() - 1]), (2, 3));
    let sep = ids.iter().position(|&t| t == 3).unwrap();
    assert!(enc.batch.token_type_ids[..=sep].iter().all(|&t| t == 0));
    assert!(enc.batch.token_type_ids[sep + 1..].iter().all(|&t| t == 1));
    assert_eq!(
        tok.decode(&tok.encode("The LAZY dog!").unwrap()).unwrap(),
        "the lazy dog!"
    );
    let dir = std::env::temp_dir().join(format!("ember-trained-wordpiece-{}", std::process::id()));
    tok.save_pretrained(&dir).unwrap();
    let back = EncoderTokenizer::from_pretrained(&dir).unwrap();
    let texts = ["pairs of pieces", "an unseen wörd"];
    assert_eq!(
        back.encode_batch(&texts, &EncodeOptions::default()).unwrap(),
        tok.encode_batch(&texts, &EncodeOptions::default()).unwrap()
    );
    assert_eq!(back.mask_token_id(), Some(4));
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(
        EncoderTokenizer::train_wordpiece(&corpus, 3),
        Err(Error::Config { .. })
    ));
}
