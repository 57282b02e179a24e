//! burn records as bytes: bincode at f64 precision, as burn's `BinBytesRecorder` writes them, but
//! decoded without a panic and written in a stable order.
//!
//! burn 0.21's `BinBytesRecorder::load_item` unwraps the decoder's result, so a checkpoint file
//! whose checksum is right but whose contents do not decode (a shortened file with an updated
//! manifest, another model's record, another version's layout) would abort the program. Here the
//! same bytes are decoded with errors returned, a length claim bounded by the input's size (a
//! corrupt length prefix cannot ask for terabytes), and trailing bytes refused.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bincode::config::{Config, standard};
use burn::module::ParamId;
use burn::record::{
    BinBytesRecorder, BurnRecord, BurnRecordNoItem, DoublePrecisionSettings, Record, Recorder,
};
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;

/// Precision of every record we write: exact for f32 and f64 parameters.
type Precision = DoublePrecisionSettings;
/// burn's recorder, for writing (its `save_item` cannot fail on a record) and for the metadata.
type Writer = BinBytesRecorder<Precision>;

/// A record as bytes (burn's `BinBytesRecorder` format, f64 precision).
pub(crate) fn encode<B: Backend, R: Record<B>>(record: R) -> Result<Vec<u8>, String> {
    Recorder::<B>::record(&Writer::default(), record, ()).map_err(|e| e.to_string())
}

/// A parameter-keyed record (an optimizer's state) as bytes, its entries sorted by parameter id so
/// that one state always gives the same bytes. It decodes through [`decode`] like any record:
/// bincode writes a `BTreeMap` and a `HashMap` alike.
pub(crate) fn encode_param_map<B: Backend, T: Record<B>>(
    map: impl IntoIterator<Item = (ParamId, T)>,
) -> Result<Vec<u8>, String> {
    let sorted: BTreeMap<String, T::Item<Precision>> = map
        .into_iter()
        .map(|(id, record)| (id.serialize(), record.into_item::<Precision>()))
        .collect();
    let item = BurnRecord::<_, B>::new::<Writer>(sorted);
    Recorder::<B>::save_item(&Writer::default(), item, ()).map_err(|e| e.to_string())
}

/// Decodes `bytes` written by [`encode`] (or by burn's `BinBytesRecorder` at f64 precision) into a
/// record on `device`. Every failure is an `Err` that says what was found.
pub(crate) fn decode<B: Backend, R: Record<B>>(bytes: &[u8], device: &B::Device) -> Result<R, String> {
    let item: BurnRecord<R::Item<Precision>, B> = match decode_bounded(bytes) {
        Ok(item) => item,
        Err(e) => return Err(describe_failure::<B>(bytes, e)),
    };
    // The item decoded; building tensors from it asserts that each tensor's bytes fit its shape
    // and type, which a crafted file can break. Last resort at this one boundary: catch it.
    catch_unwind(AssertUnwindSafe(|| R::from_item(item.item, device)))
        .map_err(|_| "its tensors do not match their shapes (a corrupt or foreign record)".to_string())
}

/// Why `bytes` did not decode, with the metadata they carry when it is readable (a record of
/// another burn version or precision says so).
fn describe_failure<B: Backend>(bytes: &[u8], error: String) -> String {
    let expected = BurnRecord::<(), B>::new::<Writer>(()).metadata;
    match decode_prefix::<BurnRecordNoItem>(bytes) {
        Ok(found) if found.metadata.version != expected.version || found.metadata.float != expected.float => {
            format!(
                "{error}; it was written by burn {} with {} floats, this build reads burn {} records with {} floats",
                found.metadata.version, found.metadata.float, expected.version, expected.float
            )
        }
        Ok(_) => format!("{error} (a truncated, corrupt or foreign record)"),
        Err(_) => format!("{error} (not a burn record)"),
    }
}

/// Decodes the whole of `bytes`; trailing bytes are an error.
fn decode_bounded<I: DeserializeOwned>(bytes: &[u8]) -> Result<I, String> {
    let (item, read) = decode_with_limit::<I>(bytes)?;
    if read != bytes.len() {
        return Err(format!(
            "{} bytes decode to a record, {} bytes follow it",
            read,
            bytes.len() - read
        ));
    }
    Ok(item)
}

/// Decodes the start of `bytes` (for the metadata that leads every record).
fn decode_prefix<I: DeserializeOwned>(bytes: &[u8]) -> Result<I, String> {
    decode_with_limit::<I>(bytes).map(|(item, _)| item)
}

/// bincode with a claim limit of about twice the input (the in-memory size of a few small vectors
/// can exceed their encoded size), so that a corrupt length prefix fails instead of allocating.
/// The limit is a type parameter in bincode, hence one arm per power of two.
fn decode_with_limit<I: DeserializeOwned>(bytes: &[u8]) -> Result<(I, usize), String> {
    fn run<I: DeserializeOwned, C: Config>(bytes: &[u8], config: C) -> Result<(I, usize), String> {
        bincode::serde::decode_from_slice::<I, C>(bytes, config).map_err(|e| format!("cannot decode: {e}"))
    }
    let need = bytes.len().saturating_mul(2).saturating_add(1 << 16);
    macro_rules! arms {
        ($($bits:literal)*) => {
            $(if need <= 1usize << $bits {
                return run(bytes, standard().with_limit::<{ 1usize << $bits }>());
            })*
        };
    }
    arms!(16 18 20 22 24 26 28 30 32 34 36 38 40 42 44 46 48);
    run(bytes, standard())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig, LinearRecord};

    type B = NdArray<f32>;

    fn linear() -> Linear<B> {
        LinearConfig::new(3, 2).init(&Default::default())
    }

    #[test]
    fn round_trips_and_refuses_what_does_not_decode() {
        let device = Default::default();
        let model = linear();
        // Materialise the lazy parameters before cloning (a clone of an untouched one redraws).
        let expected = model.weight.val().into_data().to_vec::<f32>().unwrap();
        let bytes = encode::<B, _>(model.clone().into_record()).unwrap();
        let back: LinearRecord<B> = decode(&bytes, &device).unwrap();
        let back = linear().load_record(back);
        assert_eq!(back.weight.val().into_data().to_vec::<f32>().unwrap(), expected);
        // Shortened, lengthened, and empty.
        for bad in [
            &bytes[..bytes.len() - 5],
            &[bytes.as_slice(), &[0u8; 3]].concat(),
            &[][..],
        ] {
            let Err(err) = decode::<B, LinearRecord<B>>(bad, &device) else {
                panic!("{} bytes of {} decoded", bad.len(), bytes.len());
            };
            assert!(err.contains("decode") || err.contains("follow"), "{err}");
        }
    }

    #[test]
    fn a_corrupt_length_prefix_fails_without_allocating_it() {
        use burn::tensor::TensorData;
        let data = TensorData::new(vec![1.0f64, 2.0, 3.0], [3]);
        let bytes = bincode::serde::encode_to_vec(&data, standard()).unwrap();
        // The tensor's bytes come first, behind a one-byte varint length (24): claim 2^60 instead
        // (bincode's varint: 253, then a u64).
        assert_eq!(bytes[0], 24);
        let mut bad = vec![253u8];
        bad.extend_from_slice(&(1u64 << 60).to_le_bytes());
        bad.extend_from_slice(&bytes[1..]);
        let err = decode_bounded::<TensorData>(&bad).unwrap_err();
        assert!(err.contains("cannot decode"), "{err}");
        assert!(decode_bounded::<TensorData>(&bytes).is_ok());
    }
}
