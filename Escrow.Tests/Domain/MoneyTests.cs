using System.Numerics;

namespace Escrow.Tests.Domain;

public sealed class MoneyTests
{
    [Theory]
    [InlineData(7_500)]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5_000)]
    [InlineData(9_999)]
    [InlineData(10_000)]
    public void Split_of_every_amount_up_to_a_million_minor_units_adds_up_and_rounds_half_up(int bps)
    {
        var failures = new List<string>();
        for (long amount = 1; amount <= 1_000_000; amount++)
        {
            var split = Split.Of(Money.Eur(amount), bps);
            // Computed independently: floor((amount × bps + 5 000) / 10 000) in arbitrary precision.
            var expectedShare = (long)BigInteger.Divide((new BigInteger(amount) * bps) + 5_000, 10_000);
            if (split.RecipientShare.Minor != expectedShare
                || split.RecipientShare.Minor + split.PlatformFee.Minor != amount
                || split.PlatformFee.Minor < 0
                || split.RecipientShare.Currency != Currency.Eur
                || split.PlatformFee.Currency != Currency.Eur)
            {
                failures.Add($"{amount}: share {split.RecipientShare.Minor} (expected {expectedShare}), fee {split.PlatformFee.Minor}");
                if (failures.Count >= 10)
                {
                    break;
                }
            }
        }
        Assert.Empty(failures);
    }

    [Theory]
    [InlineData(1, 7_500, 1)]        // 0.75 rounds up
    [InlineData(2, 7_500, 2)]        // 1.5 rounds half up
    [InlineData(3, 5_000, 2)]        // 1.5 rounds half up
    [InlineData(1, 4_999, 0)]        // 0.4999 rounds down
    [InlineData(15_00, 7_500, 11_25)]
    [InlineData(1_999, 7_500, 1_499)] // 1499.25
    public void Split_rounds_the_share_half_up_with_decimal_arithmetic(long amount, int bps, long share)
    {
        var split = Split.Of(Money.Eur(amount), bps);
        var byDecimal = (long)Math.Floor(((decimal)amount * bps / 10_000m) + 0.5m);
        Assert.Equal(share, byDecimal);
        Assert.Equal(share, split.RecipientShare.Minor);
        Assert.Equal(amount - share, split.PlatformFee.Minor);
    }

    [Fact]
    public void Split_of_a_huge_amount_overflows_loudly_instead_of_wrapping()
    {
        Assert.Throws<OverflowException>(() => Split.Of(Money.Eur(long.MaxValue / 2), 7_500));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Split_of_a_non_positive_amount_is_refused(long amount)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Split.Of(Money.Eur(amount), 7_500));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(10_001)]
    public void Split_with_a_share_outside_0_to_10000_basis_points_is_refused(int bps)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Split.Of(Money.Eur(100), bps));
    }

    [Theory]
    [InlineData("EUR", "EUR")]
    [InlineData("usd", "USD")]
    [InlineData("JpY", "JPY")]
    public void Currency_parses_three_ascii_letters_into_upper_case(string text, string code)
    {
        Assert.True(Currency.TryParse(text, out var currency));
        Assert.Equal(code, currency.Code);
        Assert.Equal(code, Currency.Parse(text).Code);
        Assert.Equal(code, currency.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("EU")]
    [InlineData("EURO")]
    [InlineData("E1R")]
    [InlineData(" EU")]
    [InlineData("ÉUR")]
    public void Currency_refuses_anything_but_three_ascii_letters(string? text)
    {
        Assert.False(Currency.TryParse(text, out var currency));
        Assert.Equal(default(Currency), currency);
        if (text is not null)
        {
            var error = Assert.Throws<FormatException>(() => Currency.Parse(text));
            Assert.Contains("ISO 4217", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parsed_currency_equals_the_well_known_instance()
    {
        Assert.Equal(Currency.Eur, Currency.Parse("eur"));
        Assert.Equal(Currency.Usd, Currency.Parse("USD"));
        Assert.NotEqual(Currency.Eur, Currency.Usd);
    }

    [Fact]
    public void Money_adds_and_subtracts_in_the_same_currency()
    {
        Assert.Equal(Money.Eur(25_00), Money.Eur(15_00) + Money.Eur(10_00));
        Assert.Equal(Money.Eur(5_00), Money.Eur(15_00) - Money.Eur(10_00));
    }

    [Fact]
    public void Money_in_different_currencies_cannot_be_added_or_subtracted()
    {
        var eur = Money.Eur(100);
        var usd = new Money(100, Currency.Usd);
        var add = Assert.Throws<InvalidOperationException>(() => eur + usd);
        Assert.Contains("EUR", add.Message, StringComparison.Ordinal);
        Assert.Contains("USD", add.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => eur - usd);
    }

    [Fact]
    public void Money_arithmetic_is_checked()
    {
        Assert.Throws<OverflowException>(() => Money.Eur(long.MaxValue) + Money.Eur(1));
        Assert.Throws<OverflowException>(() => Money.Eur(long.MinValue) - Money.Eur(1));
    }
}
