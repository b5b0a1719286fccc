namespace Escrow.Tests.Sandbox;

/// <summary>
/// Stripe's minimum charge per currency, as the highest amount it refuses (in minor units): one table for the sandbox
/// that refuses such a PaymentIntent and for the API that refuses a price that would need one.
/// </summary>
public static class StripeMinimumCharges
{
    public static TheoryData<string, long> HighestRefused => new()
    {
        { "EUR", 49 },
        { "USD", 49 },
        { "GBP", 29 },
        { "JPY", 49 },
    };
}
