//! A serializer that refuses non-finite floats and otherwise is the one it wraps.
//!
//! serde_json writes `NaN` and ±infinity as `null` without an error, and `null` does not read
//! back as an `f64` (an `Option<f64>` silently comes back `None`). A value that would not read
//! back must not be stored: [`Finite`] passes every call through to serde_json's serializer
//! unchanged, but an `f32` or `f64` that is not finite is an error, wherever it sits in the
//! value (a field, an element, a map key or value, a variant's payload).

use serde::Serialize;
use serde::ser::{
    self, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// What the error says.
const NON_FINITE: &str = "a float that is NaN or infinite has no JSON form (serde_json would store `null`, which does not read back as the float); store it as an Option, a string, or with the bincode format";

/// `value`, serialized by `serializer`, or an error at its first non-finite float.
pub(super) fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    value.serialize(Finite(serializer))
}

/// A value seen through [`Finite`].
struct Checked<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Checked<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Finite(serializer))
    }
}

/// The wrapped serializer, refusing non-finite floats.
struct Finite<S>(S);

/// A compound (sequence, map, struct…) of the wrapped serializer whose members go through
/// [`Finite`] too.
struct Members<C>(C);

fn finite<E: ser::Error>(finite: bool) -> Result<(), E> {
    if finite {
        Ok(())
    } else {
        Err(E::custom(NON_FINITE))
    }
}

impl<S: Serializer> Serializer for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Members<S::SerializeSeq>;
    type SerializeTuple = Members<S::SerializeTuple>;
    type SerializeTupleStruct = Members<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Members<S::SerializeTupleVariant>;
    type SerializeMap = Members<S::SerializeMap>;
    type SerializeStruct = Members<S::SerializeStruct>;
    type SerializeStructVariant = Members<S::SerializeStructVariant>;

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        finite(v.is_finite())?;
        self.0.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        finite(v.is_finite())?;
        self.0.serialize_f64(v)
    }

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.0.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.0.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.0.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.0.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.0.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.0.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.0.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.0.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.0.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.0.serialize_u128(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Checked(value))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Checked(value))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Checked(value))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Members)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Members)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Members)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Members)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Members)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Members)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Members)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// The compound serializers of a sequence or tuple: each element checked, then handed on.
macro_rules! elements_checked {
    ($($compound:ident :: $method:ident),* $(,)?) => {$(
        impl<C: $compound> $compound for Members<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Checked(value))
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

elements_checked!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl<C: SerializeMap> SerializeMap for Members<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Checked(key))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Checked(value))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

/// The compound serializers of a struct: each named field checked, then handed on.
macro_rules! fields_checked {
    ($($compound:ident),*) => {$(
        impl<C: $compound> $compound for Members<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Checked(value))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

fields_checked!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
        let mut out = Vec::new();
        super::serialize(value, &mut serde_json::Serializer::new(&mut out))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[derive(Serialize)]
    enum Shape {
        Circle(f64),
        Point { x: f32, y: f32 },
        Pair(f64, f64),
    }

    #[test]
    fn a_non_finite_float_anywhere_in_a_value_is_refused() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(json(&bad).is_err());
            assert!(json(&Some(bad)).is_err());
            assert!(json(&vec![1.0, bad]).is_err());
            assert!(json(&(1, bad)).is_err());
            assert!(json(&BTreeMap::from([("k", bad)])).is_err());
            assert!(json(&Shape::Circle(bad)).is_err());
            assert!(json(&Shape::Pair(0.0, bad)).is_err());
            assert!(
                json(&Shape::Point {
                    x: 0.0,
                    y: bad as f32
                })
                .is_err()
            );
        }
    }

    #[test]
    fn everything_else_is_what_serde_json_writes() {
        #[derive(Serialize)]
        struct All {
            n: u128,
            i: i128,
            f: f64,
            s: &'static str,
            o: Option<f32>,
            m: BTreeMap<u8, Vec<f64>>,
            shapes: Vec<Shape>,
            unit: (),
        }
        let all = All {
            n: u128::MAX,
            i: i128::MIN,
            f: -0.5,
            s: "\"x\"",
            o: None,
            m: BTreeMap::from([(1, vec![f64::MAX, f64::MIN_POSITIVE])]),
            shapes: vec![Shape::Circle(1.0), Shape::Point { x: 1.5, y: -2.0 }],
            unit: (),
        };
        assert_eq!(json(&all).ok(), serde_json::to_string(&all).ok());
    }
}
