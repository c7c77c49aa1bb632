//! Payments: paying an invoice by M-Pesa (Daraja's STK push). So far the gateway
//! ([`gateway::Gateway`], Daraja's client in [`daraja`]), Kenyan phone numbers
//! ([`phone`]) and Daraja's callback body ([`callback`]).

pub mod callback;
pub mod daraja;
pub mod gateway;
pub mod phone;
