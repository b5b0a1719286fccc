using System.Globalization;
using Escrow.Grains.Email;
using Microsoft.Extensions.Options;

namespace Escrow.Tests.Domain;

public sealed class RetryPolicyTests
{
    private static readonly RetryPolicy Policy = new(MaxAttempts: 8, First: TimeSpan.FromMinutes(1), Max: TimeSpan.FromHours(6));

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(9, 256)]
    [InlineData(10, 360)]
    [InlineData(11, 360)]
    [InlineData(1_000, 360)]
    [InlineData(int.MaxValue, 360)]
    public void Delay_doubles_after_each_failure_and_is_capped_at_the_maximum(int failures, int minutes)
    {
        Assert.Equal(TimeSpan.FromMinutes(minutes), Policy.DelayAfter(failures));
    }

    [Fact]
    public void Delays_never_decrease_and_never_exceed_the_maximum()
    {
        var previous = TimeSpan.Zero;
        for (var failures = 1; failures <= 100; failures++)
        {
            var delay = Policy.DelayAfter(failures);
            Assert.InRange(delay, previous, Policy.Max);
            previous = delay;
        }
    }

    [Fact]
    public void A_policy_is_exhausted_at_its_maximum_attempts_and_not_before()
    {
        Assert.False(Policy.IsExhausted(7));
        Assert.True(Policy.IsExhausted(8));
        Assert.True(Policy.IsExhausted(9));
    }

    [Fact]
    public void Default_policy_matches_the_style_guide()
    {
        Assert.Equal(new RetryPolicy(8, TimeSpan.FromMinutes(1), TimeSpan.FromHours(6)), EscrowPolicy.Default.TransferRetry);
        Assert.Equal(TimeSpan.FromMinutes(1), EscrowPolicy.Default.PermitRetryDelay);
        Assert.Equal(EscrowPolicy.Default, new EscrowOptions().ToPolicy());
    }
}

public sealed class OptionsTests
{
    private static readonly EscrowOptionsValidator Validator = new();

    [Fact]
    public void Default_escrow_options_pass()
    {
        var result = Validator.Validate(null, new EscrowOptions());
        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Window_plus_grace_of_exactly_six_days_fails_with_a_message_that_says_how_to_fix_it()
    {
        var options = new EscrowOptions
        {
            ResponseWindows = [new ResponseWindowOption { Duration = TimeSpan.FromDays(6) - TimeSpan.FromMinutes(15), PriceMultiplier = 1m }],
            ReplyGrace = TimeSpan.FromMinutes(15),
        };
        var result = Validator.Validate(null, options);
        Assert.True(result.Failed);
        var message = Assert.Single(result.Failures!);
        Assert.Contains("under 6 days", message, StringComparison.Ordinal);
        Assert.Contains("Shorten the window or the grace", message, StringComparison.Ordinal);
        Assert.Contains("PT15M", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Window_plus_grace_just_under_six_days_passes()
    {
        var options = new EscrowOptions
        {
            ResponseWindows = [new ResponseWindowOption { Duration = TimeSpan.FromDays(6) - TimeSpan.FromMinutes(16), PriceMultiplier = 1m }],
            ReplyGrace = TimeSpan.FromMinutes(15),
        };
        Assert.True(Validator.Validate(null, options).Succeeded);
    }

    [Fact]
    public void A_long_grace_on_the_default_windows_fails()
    {
        var result = Validator.Validate(null, new EscrowOptions { ReplyGrace = TimeSpan.FromDays(3) });
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("Escrow:ReplyGrace", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("zero_window", "Escrow:ResponseWindows:N:Duration")]
    [InlineData("zero_multiplier", "PriceMultiplier")]
    [InlineData("duplicate_window", "same Duration twice")]
    [InlineData("negative_grace", "must not be negative")]
    [InlineData("zero_unpaid_expiry", "Escrow:UnpaidExpiry")]
    [InlineData("bad_transfer_retry", "Escrow:TransferRetry")]
    [InlineData("short_reminder_period", "Escrow:ReminderPeriod")]
    [InlineData("share_over_100_percent", "Escrow:DefaultRevenueShareBps")]
    [InlineData("zero_daily_limit", "Escrow:DefaultDailyLimit")]
    public void Invalid_escrow_options_fail_naming_the_setting(string broken, string expected)
    {
        var o = new EscrowOptions();
        switch (broken)
        {
            case "zero_window": o.ResponseWindows = [new ResponseWindowOption { Duration = TimeSpan.Zero }]; break;
            case "zero_multiplier": o.ResponseWindows = [new ResponseWindowOption { Duration = TimeSpan.FromHours(24), PriceMultiplier = 0m }]; break;
            case "duplicate_window": o.ResponseWindows = [new ResponseWindowOption { Duration = TimeSpan.FromHours(24) }, new ResponseWindowOption { Duration = TimeSpan.FromHours(24) }]; break;
            case "negative_grace": o.ReplyGrace = TimeSpan.FromMinutes(-1); break;
            case "zero_unpaid_expiry": o.UnpaidExpiry = TimeSpan.Zero; break;
            case "bad_transfer_retry": o.TransferRetry = new TransferRetryOptions { FirstDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromMinutes(1) }; break;
            case "short_reminder_period": o.ReminderPeriod = TimeSpan.FromMilliseconds(500); break;
            case "share_over_100_percent": o.DefaultRevenueShareBps = 10_001; break;
            case "zero_daily_limit": o.DefaultDailyLimit = 0; break;
            default: throw new ArgumentOutOfRangeException(nameof(broken), broken, null);
        }
        var result = Validator.Validate(null, o);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Default_circuit_breaker_options_pass_and_broken_ones_name_every_setting()
    {
        var validator = new CircuitBreakerOptionsValidator(Options.Create(new EscrowOptions()));
        Assert.True(validator.Validate(null, new CircuitBreakerOptions()).Succeeded);
        var result = validator.Validate(null, new CircuitBreakerOptions { RefundsPerWindowMax = 0, RefundAmountPerWindowMaxMinor = 0, Window = TimeSpan.Zero });
        Assert.True(result.Failed);
        Assert.Equal(3, result.Failures!.Count());
        Assert.Contains(result.Failures!, f => f.Contains("CircuitBreaker:RefundsPerWindowMax", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("CircuitBreaker:RefundAmountPerWindowMaxMinor", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("CircuitBreaker:Window", StringComparison.Ordinal));
    }

    [Fact]
    public void With_no_setting_euros_are_the_one_currency_and_their_cap_is_10000()
    {
        var (caps, errors) = new CircuitBreakerOptions().AmountCaps(new EscrowOptions().EnabledCurrencies);
        Assert.Empty(errors);
        Assert.Equal(new Dictionary<string, long> { ["EUR"] = 10_000 }, caps);
    }

    [Fact]
    public void Every_enabled_currency_needs_its_own_cap_and_the_message_names_the_missing_key()
    {
        var escrow = new EscrowOptions { Currencies = ["EUR", "jpy", "KWD"] };
        var breaker = new CircuitBreakerOptions();
        breaker.AmountPerWindowMax["jpy"] = 1_000_000;

        var result = new CircuitBreakerOptionsValidator(Options.Create(escrow)).Validate(null, breaker);

        Assert.True(result.Failed);
        Assert.Equal(["CircuitBreaker:AmountPerWindowMax:KWD is required: the most refunded in KWD per window, in minor units (Escrow:Currencies enables KWD)."], result.Failures);
        breaker.AmountPerWindowMax["KWD"] = 30_000;
        Assert.Equal(new Dictionary<string, long> { ["EUR"] = 10_000, ["JPY"] = 1_000_000, ["KWD"] = 30_000 }, breaker.AmountCaps(escrow.EnabledCurrencies).Caps);
    }

    [Fact]
    public void The_single_number_setting_still_caps_the_one_enabled_currency_and_is_refused_beside_several()
    {
        var legacy = new CircuitBreakerOptions { RefundAmountPerWindowMaxMinor = 2_500 };
        Assert.Equal(new Dictionary<string, long> { ["EUR"] = 2_500 }, legacy.AmountCaps(new EscrowOptions().EnabledCurrencies).Caps);
        Assert.Equal(new Dictionary<string, long> { ["USD"] = 2_500 }, legacy.AmountCaps(new EscrowOptions { Currencies = ["USD"] }.EnabledCurrencies).Caps);

        var several = new CircuitBreakerOptionsValidator(Options.Create(new EscrowOptions { Currencies = ["EUR", "USD"] })).Validate(null, legacy);

        Assert.True(several.Failed);
        Assert.Contains(several.Failures!, f => f.StartsWith("CircuitBreaker:RefundAmountPerWindowMaxMinor is one cap for one currency", StringComparison.Ordinal)
            && f.Contains("CircuitBreaker:AmountPerWindowMax:EUR and CircuitBreaker:AmountPerWindowMax:USD", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("both", "CircuitBreaker:AmountPerWindowMax:EUR and CircuitBreaker:RefundAmountPerWindowMaxMinor are both set")]
    [InlineData("not_enabled", "CircuitBreaker:AmountPerWindowMax:GBP names a currency that Escrow:Currencies does not enable")]
    [InlineData("zero", "CircuitBreaker:AmountPerWindowMax:EUR must be at least 1")]
    public void A_currency_cap_that_cannot_be_meant_is_refused_by_its_key(string broken, string expected)
    {
        var o = new CircuitBreakerOptions();
        switch (broken)
        {
            case "both": o.AmountPerWindowMax["EUR"] = 10_000; o.RefundAmountPerWindowMaxMinor = 10_000; break;
            case "not_enabled": o.AmountPerWindowMax["GBP"] = 10_000; break;
            case "zero": o.AmountPerWindowMax["EUR"] = 0; break;
            default: throw new ArgumentOutOfRangeException(nameof(broken), broken, null);
        }
        var result = new CircuitBreakerOptionsValidator(Options.Create(new EscrowOptions())).Validate(null, o);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("EURO", "Escrow:Currencies:1 ('EURO') must be a three-letter ISO 4217 code")]
    [InlineData("eur", "Escrow:Currencies lists the same currency twice")]
    public void A_broken_currency_list_is_refused_by_its_key(string second, string expected)
    {
        var result = Validator.Validate(null, new EscrowOptions { Currencies = ["EUR", second] });
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("PT15M", 0, 0, 15)]
    [InlineData("P1D", 1, 0, 0)]
    [InlineData("00:15:00", 0, 0, 15)]
    [InlineData("PT72H", 3, 0, 0)]
    [InlineData("1.02:00:00", 1, 2, 0)]
    public void Iso8601_converter_parses_iso_durations_and_dotnet_time_spans(string text, int days, int hours, int minutes)
    {
        var converter = new Iso8601TimeSpanConverter();
        Assert.Equal(new TimeSpan(days, hours, minutes, 0), converter.ConvertFrom(null, CultureInfo.InvariantCulture, text));
    }

    [Theory]
    [InlineData("PT15M", 15 * 60)]
    [InlineData("P1D", 24 * 3600)]
    [InlineData("PT72H", 72 * 3600)]
    [InlineData("00:15:00", null)]
    [InlineData("PXYZ", null)]
    [InlineData("PT0S", null)]
    [InlineData(null, null)]
    public void Iso8601_durations_on_the_wire_are_iso_and_positive(string? text, int? seconds)
    {
        var parsed = Escrow.Api.Endpoints.Iso8601.TryParseDuration(text, out var value);
        Assert.Equal(seconds is not null, parsed);
        Assert.Equal(seconds is { } s ? TimeSpan.FromSeconds(s) : TimeSpan.Zero, parsed ? value : TimeSpan.Zero);
    }
}

public sealed class EmailComposerTests
{
    private const string RecipientEmail = "alice@recipient.test";
    private static readonly RecipientContact Recipient = new(RecipientEmail, "Alice");
    private static readonly EmailComposer Composer = new(new PostmarkOptions { InboundDomain = "reply.escrow.test" });

    public static TheoryData<EmailKind> SenderEmails() => [EmailKind.ReplyForwarded, EmailKind.PaymentReceipt, EmailKind.RefundIssued, EmailKind.PaymentVoided];

    public static TheoryData<EmailKind> RecipientReplyableEmails() => [EmailKind.NewMessage, EmailKind.DeadlineReminder50, EmailKind.DeadlineReminder75];

    [Theory]
    [MemberData(nameof(SenderEmails))]
    public void Sender_emails_never_contain_the_recipients_address(EmailKind kind)
    {
        var s = AnEscrow.Held();
        var mail = Composer.Compose(s, kind, Recipient, "Thanks for asking.");
        Assert.Equal(AnEscrow.SenderEmail, mail.To);
        Assert.Null(mail.ReplyTo);
        foreach (var part in new[] { mail.Subject, mail.TextBody, mail.HtmlBody })
        {
            Assert.DoesNotContain(RecipientEmail, part, StringComparison.OrdinalIgnoreCase);
        }
        Assert.DoesNotContain(mail.Metadata!.Values, v => v.Contains(RecipientEmail, StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(RecipientReplyableEmails))]
    public void Recipient_message_and_reminders_reply_to_the_escrows_reply_address(EmailKind kind)
    {
        var s = AnEscrow.Held();
        var token = AnEscrow.Tokens.ReplyTokenOf(s)!;
        var mail = Composer.Compose(s, kind, Recipient, null, replyToken: token);
        Assert.Equal(RecipientEmail, mail.To);
        Assert.Equal($"reply+{token}@reply.escrow.test", mail.ReplyTo);
        Assert.Contains("11.25 EUR", mail.TextBody, StringComparison.Ordinal);
        Assert.Equal(EmailComposer.Tag(kind), mail.Tag);
        Assert.Equal(s.Id.ToString("D"), mail.Metadata!["escrow_id"]);
    }

    [Fact]
    public void New_message_shows_the_amount_the_share_the_deadline_and_the_message()
    {
        var s = AnEscrow.Held();
        var mail = Composer.Compose(s, EmailKind.NewMessage, Recipient, null, replyToken: AnEscrow.Tokens.ReplyTokenOf(s));
        Assert.Contains("15.00 EUR", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("11.25 EUR", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("2030-03-02 12:00 UTC", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains(s.Message, mail.TextBody, StringComparison.Ordinal);
        Assert.Contains(s.Subject, mail.Subject, StringComparison.Ordinal);
    }

    [Fact]
    public void Html_body_encodes_what_the_sender_wrote()
    {
        var s = AnEscrow.Held() with { Message = "<script>alert(1)</script>" };
        var mail = Composer.Compose(s, EmailKind.NewMessage, Recipient, null, replyToken: AnEscrow.Tokens.ReplyTokenOf(s));
        Assert.DoesNotContain("<script>", mail.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;", mail.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Reply_forwarded_carries_the_reply_text_to_the_sender()
    {
        var mail = Composer.Compose(AnEscrow.Processing(), EmailKind.ReplyForwarded, Recipient, "Here are the slides.");
        Assert.Equal(AnEscrow.SenderEmail, mail.To);
        Assert.Contains("Here are the slides.", mail.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void A_voided_authorisation_before_a_reply_withdraws_the_message_for_both()
    {
        var s = AnEscrow.Held();
        var sender = Composer.Compose(s, EmailKind.PaymentVoided, Recipient, null);
        var recipient = Composer.Compose(s, EmailKind.PaymentWithdrawn, Recipient, null);
        Assert.Equal(AnEscrow.SenderEmail, sender.To);
        Assert.Contains("15.00 EUR", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("not charged", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("send it again", sender.TextBody, StringComparison.Ordinal);
        Assert.Equal(RecipientEmail, recipient.To);
        // Not a reply address: there is nothing to answer any more.
        Assert.Null(recipient.ReplyTo);
        Assert.Contains("withdrawn", recipient.TextBody, StringComparison.Ordinal);
        Assert.Contains("11.25 EUR", recipient.TextBody, StringComparison.Ordinal);
        Assert.Equal("payment-voided", sender.Tag);
        Assert.Equal("payment-withdrawn", recipient.Tag);
    }

    [Fact]
    public void A_voided_authorisation_after_a_reply_tells_the_recipient_the_share_could_not_be_paid()
    {
        var s = AnEscrow.Processing();
        var sender = Composer.Compose(s, EmailKind.PaymentVoided, Recipient, null);
        var recipient = Composer.Compose(s, EmailKind.PaymentWithdrawn, Recipient, null);
        Assert.DoesNotContain("send it again", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("not charged", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("Thank you for replying", recipient.TextBody, StringComparison.Ordinal);
        Assert.Contains("11.25 EUR could not be paid", recipient.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Pending_payout_setup_links_the_onboarding_url()
    {
        var mail = Composer.Compose(AnEscrow.PendingUserSetup(), EmailKind.PendingPayoutSetup, Recipient, null, "https://connect.example.test/onboard");
        Assert.Equal(RecipientEmail, mail.To);
        Assert.Contains("https://connect.example.test/onboard", mail.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void A_yen_escrow_is_e_mailed_without_decimals_and_a_dinar_one_with_three()
    {
        var yen = Composer.Compose(AnEscrow.Held(new Money(1_500, Currency.Parse("JPY"))), EmailKind.NewMessage, Recipient, null, replyToken: AnEscrow.ReplyToken);
        var dinar = Composer.Compose(AnEscrow.Held(new Money(12_345, Currency.Parse("KWD"))), EmailKind.NewMessage, Recipient, null, replyToken: AnEscrow.ReplyToken);

        Assert.Contains("1125 JPY", yen.TextBody, StringComparison.Ordinal); // the 75 % share of 1500 yen
        Assert.DoesNotContain("11.25 JPY", yen.TextBody, StringComparison.Ordinal);
        Assert.Contains("9.259 KWD", dinar.TextBody, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(15_00, "EUR", "15.00 EUR")]
    [InlineData(5, "EUR", "0.05 EUR")]
    [InlineData(1_234_567, "USD", "12345.67 USD")]
    [InlineData(1_500, "JPY", "1500 JPY")]
    [InlineData(7, "KRW", "7 KRW")]
    [InlineData(12_345, "KWD", "12.345 KWD")]
    [InlineData(5, "BHD", "0.005 BHD")]
    public void Amounts_are_formatted_in_the_currencys_own_decimals(long minor, string currency, string expected)
    {
        Assert.Equal(expected, EmailComposer.Format(new Money(minor, Currency.Parse(currency))));
    }
}

public sealed class ReplyTokenTests
{
    private static readonly Guid EscrowId = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
    private static readonly DateTimeOffset CreatedAt = new(2026, 12, 4, 10, 0, 0, TimeSpan.Zero);
    private static readonly EscrowTokens Tokens = new(["token-secret-for-tests-000001"]);

    [Fact]
    public void A_reply_token_is_the_escrow_id_the_secrets_id_and_128_bits_of_mac_in_lower_case_hex()
    {
        var token = Tokens.Issue(EscrowId, CreatedAt).ReplyToken;
        Assert.Matches("^[0-9a-f]{68}$", token);
        Assert.Equal(EscrowId.ToString("N") + EscrowTokens.KeyIdOf("token-secret-for-tests-000001"), token[..36]);
        Assert.True(ReplyToken.TryGetEscrowId(token, out var id));
        Assert.Equal(EscrowId, id);
    }

    [Fact]
    public void A_legacy_reply_token_still_names_its_escrow()
    {
        Assert.True(ReplyToken.TryGetEscrowId("6f9619ff8b86d011b42d00cf4fc964ff" + "00112233445566778899aabbccddeeff", out var id));
        Assert.Equal(EscrowId, id);
    }

    [Fact]
    public void Tokens_differ_per_escrow_per_creation_and_per_secret()
    {
        var a = Tokens.Issue(EscrowId, CreatedAt);
        Assert.Equal(a, Tokens.Issue(EscrowId, CreatedAt));
        Assert.NotEqual(a.ReplyToken[36..], Tokens.Issue(Guid.NewGuid(), CreatedAt).ReplyToken[36..]);
        Assert.NotEqual(a.AccessToken, Tokens.Issue(EscrowId, CreatedAt.AddTicks(1)).AccessToken);
        Assert.NotEqual(a.AccessToken[4..], new EscrowTokens(["another-secret-for-tests-0001"]).Issue(EscrowId, CreatedAt).AccessToken[4..]);
        Assert.Equal(EscrowTokens.AccessTokenLength, a.AccessToken.Length);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("6f9619ff8b86d011b42d00cf4fc964ff")]
    [InlineData("6f9619ff8b86d011b42d00cf4fc964ff00112233445566778899aabbccddeeffa")]
    [InlineData("zz9619ff8b86d011b42d00cf4fc964ff00112233445566778899aabbccddeeff")]
    [InlineData("6f9619ff8b86d011b42d00cf4fc964ff00112233445566778899aabbccddeeff0a1b2")]
    public void Malformed_tokens_yield_no_escrow_id(string? token)
    {
        Assert.False(ReplyToken.TryGetEscrowId(token, out var id));
        Assert.Equal(Guid.Empty, id);
    }

    [Fact]
    public void Only_the_exact_token_opens_its_hash()
    {
        var token = Tokens.Issue(EscrowId, CreatedAt).ReplyToken;
        var hash = TokenHash.OfReplyToken(token);
        var flipped = token[..^1] + (token[^1] == '0' ? '1' : '0');
        Assert.True(TokenHash.OpensReply(hash, token));
        Assert.True(TokenHash.OpensReply(hash, token.ToUpperInvariant()));
        Assert.False(TokenHash.OpensReply(hash, flipped));
        Assert.False(TokenHash.OpensReply(hash, token[..^1]));
        Assert.False(TokenHash.OpensReply(hash, token + "0"));
        Assert.False(TokenHash.OpensReply(hash, ""));
        Assert.False(TokenHash.OpensReply(hash, null));
        Assert.False(TokenHash.OpensReply(hash, hash));
        Assert.False(TokenHash.OpensReply("", ""));
    }
}
