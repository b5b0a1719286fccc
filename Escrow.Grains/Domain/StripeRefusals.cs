namespace Escrow.Grains.Domain;

/// <summary>
/// Which of Stripe's error answers are a refusal for good: asking again, with the same or the next idempotency key,
/// gets the same answer, so the escrow stops asking and an operator decides (Stripe's "Errors" reference: a 4xx
/// "failed given the information provided"; 409, 429 and 5xx are worth another try).
/// </summary>
public static class StripeRefusals
{
    /// <param name="httpStatus">The HTTP status Stripe answered (0 when no answer came).</param>
    /// <param name="type">Stripe's error type (<c>invalid_request_error</c>, <c>card_error</c>, <c>idempotency_error</c>, <c>api_error</c>, ...).</param>
    /// <param name="code">Stripe's error code (<c>resource_missing</c>, <c>charge_already_refunded</c>, ...).</param>
    public static bool IsPermanent(int httpStatus, string? type, string? code) => httpStatus switch
    {
        // The key's answer is another request's: the next try uses the next attempt's key.
        _ when type is "idempotency_error" or "api_error" or "rate_limit_error" => false,
        // Another request held the object: Stripe asks for a retry.
        _ when code is "lock_timeout" or "rate_limit" => false,
        // 401 and 403 are the service's own key or its permissions: fixed once, for every escrow at once, so each
        // effect keeps retrying (and alerts) rather than ending everywhere.
        401 or 403 => false,
        // 409 conflict (a concurrent request with the same key), 424 an external dependency, 429 rate limited.
        409 or 424 or 429 => false,
        >= 400 and < 500 => true,
        _ => false,
    };
}
