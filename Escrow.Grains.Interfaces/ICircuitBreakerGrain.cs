using System.Collections.Immutable;

namespace Escrow;

/// <summary>The singleton that hands out refund permits (key 0).</summary>
[Alias("escrow.ICircuitBreakerGrain")]
public interface ICircuitBreakerGrain : IGrainWithIntegerKey
{
    /// <summary>Idempotent per escrow: asking again in the same window for the same escrow gets the same answer.</summary>
    /// <remarks>The amount's currency picks the cap it counts against (CircuitBreaker:AmountPerWindowMax:CODE).</remarks>
    [Alias("request-permit.v2")] Task<RefundPermit> RequestPermitAsync(Guid escrowId, Money amount);

    [Alias("get")] Task<CircuitBreakerView> GetAsync();

    [Alias("reset")] Task<CircuitBreakerView> ResetAsync(string resetBy);
}

public enum RefundPermit
{
    Granted = 0,
    Denied = 1,
    NeedsApproval = 2,
}

/// <param name="RefundAmountInWindowMinor">In the first enabled currency (Escrow:Currencies); every currency is in <paramref name="Currencies"/>.</param>
/// <param name="RefundAmountPerWindowMaxMinor">The first enabled currency's cap.</param>
/// <param name="State">"open" while the count cap or any currency's amount cap is reached.</param>
[GenerateSerializer, Immutable, Alias("escrow.breaker-view.v1")]
public sealed record CircuitBreakerView(
    [property: Id(0)] string State,
    [property: Id(1)] DateTimeOffset? WindowStartedAt,
    [property: Id(2)] int RefundsInWindow,
    [property: Id(3)] long RefundAmountInWindowMinor,
    [property: Id(4)] int RefundsPerWindowMax,
    [property: Id(5)] long RefundAmountPerWindowMaxMinor,
    [property: Id(6)] TimeSpan Window,
    [property: Id(7)] int Trips,
    [property: Id(8)] ImmutableArray<CircuitBreakerCurrencyView> Currencies);

/// <summary>One enabled currency's amount in the window and its cap; "open" once the cap (or the count cap) is reached.</summary>
[GenerateSerializer, Immutable, Alias("escrow.breaker-currency-view.v1")]
public sealed record CircuitBreakerCurrencyView(
    [property: Id(0)] string Currency,
    [property: Id(1)] string State,
    [property: Id(2)] long RefundAmountInWindowMinor,
    [property: Id(3)] long RefundAmountPerWindowMaxMinor);
