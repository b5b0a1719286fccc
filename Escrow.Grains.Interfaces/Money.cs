using System.Diagnostics.CodeAnalysis;

namespace Escrow;

/// <summary>An ISO 4217 currency code, upper case (EUR, USD). Stripe wants lower case: convert only in the adapter.</summary>
[GenerateSerializer, Immutable, Alias("escrow.currency.v1")]
public readonly record struct Currency
{
    [Id(0)] public string Code { get; }

    private Currency(string code) => Code = code;

    public static Currency Eur { get; } = new("EUR");
    public static Currency Usd { get; } = new("USD");

    public static bool TryParse([NotNullWhen(true)] string? value, out Currency currency)
    {
        currency = default;
        if (value is not { Length: 3 } || !value.All(char.IsAsciiLetter))
        {
            return false;
        }
        currency = new Currency(value.ToUpperInvariant());
        return true;
    }

    public static Currency Parse(string value) =>
        TryParse(value, out var c) ? c : throw new FormatException($"'{value}' is not a three-letter ISO 4217 currency code.");

    public override string ToString() => Code ?? "";
}

/// <summary>Money in minor units (cents) with its currency. Never a double or a decimal.</summary>
[GenerateSerializer, Immutable, Alias("escrow.money.v1")]
public readonly record struct Money([property: Id(0)] long Minor, [property: Id(1)] Currency Currency)
{
    public static Money Eur(long minor) => new(minor, Currency.Eur);

    public static Money operator +(Money a, Money b) => new(checked(a.Minor + b.Minor), SameCurrency(a, b));

    public static Money operator -(Money a, Money b) => new(checked(a.Minor - b.Minor), SameCurrency(a, b));

    private static Currency SameCurrency(Money a, Money b) =>
        a.Currency == b.Currency ? a.Currency : throw new InvalidOperationException($"Cannot combine {a.Currency} with {b.Currency}.");

    public override string ToString() => $"{Minor} {Currency} (minor units)";
}

/// <summary>The split of an escrow between the recipient and the platform, fixed when the escrow is created.</summary>
[GenerateSerializer, Immutable, Alias("escrow.split.v1")]
public readonly record struct Split([property: Id(0)] Money RecipientShare, [property: Id(1)] Money PlatformFee)
{
    public const int BasisPointsMax = 10_000;

    /// <summary>
    /// share = amount × bps / 10 000 rounded half up, in integer arithmetic; the fee is the remainder,
    /// so share + fee == amount for every amount.
    /// </summary>
    public static Split Of(Money amount, int revenueShareBps)
    {
        if (amount.Minor <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(amount), amount.Minor, "An escrow amount is positive.");
        }
        if (revenueShareBps is < 0 or > BasisPointsMax)
        {
            throw new ArgumentOutOfRangeException(nameof(revenueShareBps), revenueShareBps, "A revenue share is 0..10 000 basis points.");
        }
        var share = checked((amount.Minor * revenueShareBps) + (BasisPointsMax / 2)) / BasisPointsMax;
        return new Split(new Money(share, amount.Currency), new Money(amount.Minor - share, amount.Currency));
    }
}
