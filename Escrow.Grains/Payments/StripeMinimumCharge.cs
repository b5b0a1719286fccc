namespace Escrow.Grains.Payments;

/// <summary>
/// Stripe's minimum charge amounts (docs: "Minimum and maximum charge amounts"), in the API's minor units. A
/// PaymentIntent below it fails with <c>amount_too_small</c>, so a price that could produce one is refused up front.
/// Currencies not listed are not checked here.
/// </summary>
public static class StripeMinimumCharge
{
    private static readonly Dictionary<string, long> Minimums = new(StringComparer.Ordinal)
    {
        ["USD"] = 50, ["AED"] = 200, ["AUD"] = 50, ["BGN"] = 100, ["BRL"] = 50, ["CAD"] = 50, ["CHF"] = 50,
        ["CZK"] = 1500, ["DKK"] = 250, ["EUR"] = 50, ["GBP"] = 30, ["HKD"] = 400, ["HUF"] = 17500, ["INR"] = 50,
        ["JPY"] = 50, ["MXN"] = 1000, ["MYR"] = 200, ["NOK"] = 300, ["NZD"] = 50, ["PLN"] = 200, ["RON"] = 200,
        ["SEK"] = 300, ["SGD"] = 50, ["THB"] = 1000,
    };

    /// <summary>The minimum in minor units of an ISO 4217 code (upper case), or null when Stripe's table does not list it.</summary>
    public static long? MinimumMinor(string currency) => Minimums.TryGetValue(currency, out var minimum) ? minimum : null;

    /// <summary>The price of the cheapest response window, computed as a reservation computes it.</summary>
    public static long CheapestWindowAmount(long basePriceMinor, IEnumerable<ResponseWindowOption> windows) =>
        windows.Min(w => (long)Math.Round(basePriceMinor * w.PriceMultiplier, MidpointRounding.AwayFromZero));
}
