//! What a Daraja STK callback says, read loosely: `{"Body": {"stkCallback":
//! {MerchantRequestID, CheckoutRequestID, ResultCode, ResultDesc, CallbackMetadata?:
//! {Item: [{Name, Value?}]}}}}`. The metadata comes only with ResultCode 0, and a
//! `Value` may be a number, a string, or absent (the sandbox sends `Balance` with no
//! value; amounts come as `1` or `1.00`); a code may come as a string. Nothing here
//! fails on such a body: what cannot be read is `None`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct StkCallback {
    pub checkout_request_id: String,
    pub result_code: Option<i64>,
    pub result_desc: String,
    /// `Amount`, in minor units (shillings × 100), when it reads as a number.
    pub amount_minor: Option<i64>,
    pub receipt: Option<String>,
    /// `PhoneNumber`: the payer's number, twelve characters, digits or `*` where
    /// Daraja masks some (it has started masking numbers in some callbacks).
    pub phone: Option<String>,
    pub merchant_request_id: String,
}

/// The callback in `body`, or `None` when it names no CheckoutRequestID.
pub fn parse(body: &[u8]) -> Option<StkCallback> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let callback = value.get("Body")?.get("stkCallback")?;
    let checkout_request_id = text(callback.get("CheckoutRequestID")?)?;
    if checkout_request_id.is_empty() {
        return None;
    }
    let item = |name: &str| {
        callback
            .get("CallbackMetadata")?
            .get("Item")?
            .as_array()?
            .iter()
            .find(|item| item.get("Name").and_then(Value::as_str) == Some(name))?
            .get("Value")
            .cloned()
    };
    Some(StkCallback {
        checkout_request_id,
        result_code: callback.get("ResultCode").and_then(integer),
        result_desc: callback
            .get("ResultDesc")
            .and_then(text)
            .unwrap_or_default(),
        amount_minor: item("Amount").as_ref().and_then(minor_units),
        receipt: item("MpesaReceiptNumber")
            .as_ref()
            .and_then(text)
            .filter(|receipt| !receipt.is_empty()),
        phone: item("PhoneNumber").as_ref().and_then(text).filter(|phone| {
            phone.len() == 12 && phone.bytes().all(|b| b.is_ascii_digit() || b == b'*')
        }),
        merchant_request_id: callback
            .get("MerchantRequestID")
            .and_then(text)
            .unwrap_or_default(),
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Shillings (`1`, `1.0`, `"2500.00"`) as minor units; a fraction of a cent, a
/// negative or an unreadable amount is `None` (which is not the amount asked).
fn minor_units(value: &Value) -> Option<i64> {
    let text = text(value)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn a_success_is_read_whatever_type_its_values_have() {
        let parsed = parse(&body(json!({"Body": {"stkCallback": {
            "MerchantRequestID": "29115-34620561-1",
            "CheckoutRequestID": "ws_CO_191220191020363925",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {"Item": [
                {"Name": "Amount", "Value": "2500.00"},
                {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20191219102115u64},
                {"Name": "PhoneNumber", "Value": 254708374149u64},
            ]}
        }}})))
        .unwrap();
        assert_eq!(parsed.result_code, Some(0));
        assert_eq!(parsed.amount_minor, Some(250_000));
        assert_eq!(parsed.receipt.as_deref(), Some("NLJ7RT61SV"));
        assert_eq!(parsed.phone.as_deref(), Some("254708374149"));
        assert_eq!(parsed.merchant_request_id, "29115-34620561-1");
    }

    #[test]
    fn amounts_read_as_minor_units_or_not_at_all() {
        assert_eq!(minor_units(&json!(1)), Some(100));
        assert_eq!(minor_units(&json!(1.5)), Some(150));
        assert_eq!(minor_units(&json!("2500")), Some(250_000));
        assert_eq!(minor_units(&json!("0.05")), Some(5));
        for bad in [
            json!(-1),
            json!("1.005"),
            json!("abc"),
            json!(null),
            json!(".5"),
        ] {
            assert_eq!(minor_units(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_body_naming_no_checkout_request_is_none() {
        assert_eq!(parse(b"not json"), None);
        assert_eq!(parse(&body(json!({"Body": {}}))), None);
        assert_eq!(
            parse(&body(
                json!({"Body": {"stkCallback": {"CheckoutRequestID": ""}}})
            )),
            None
        );
        let failed = parse(&body(json!({"Body": {"stkCallback": {
            "CheckoutRequestID": "ws_CO_1", "ResultCode": "1032", "ResultDesc": "Request cancelled by user"
        }}})))
        .unwrap();
        assert_eq!(failed.result_code, Some(1032));
        assert_eq!(failed.amount_minor, None);
    }
}
