using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Net.Mail;
using System.Text.RegularExpressions;
using Escrow.Api.Hosting;
using Escrow.Api.OpenApi;

namespace Escrow.Api.Endpoints;

/// <summary>The upsert's body; the attributes describe it in the OpenAPI document, the handler enforces it with its own messages.</summary>
public sealed record RecipientBody(
    [property: Required, StringLength(254, MinimumLength = 3), EmailAddress, Description("Where the recipient's messages are e-mailed.")] string? Email,
    [property: Required, StringLength(100, MinimumLength = 1), Description("The name senders see.")] string? DisplayName,
    [property: Required, Range(1, RecipientEndpoints.BasePriceMaxMinor), Description("The price of the longest window, in minor units of the currency (2500 = EUR 25.00).")] long? BasePriceMinor,
    [property: Required, StringLength(3, MinimumLength = 3), RegularExpression("^[A-Za-z]{3}$"), Description("An ISO 4217 code, accepted in any case (eur, EUR) and stored upper case.")] string? Currency,
    [property: Range(0, 10_000), Description("The recipient's share in basis points (7500 = 75 %, the default).")] int? RevenueShareBps = null,
    [property: Range(1, RecipientEndpoints.DailyLimitMax), Description("Messages accepted per UTC day.")] int? DailyLimit = null);

public sealed record RecipientResponse(string Id, string Email, string DisplayName, long BasePriceMinor, string Currency, int RevenueShareBps, int DailyLimit, string? StripeAccountId, bool PayoutsEnabled);

public sealed record OnboardingLinkBody(string? RefreshUrl = null, string? ReturnUrl = null);

public sealed record OnboardingLinkResponse(string AccountId, string Url);

public static partial class RecipientEndpoints
{
    public const long BasePriceMaxMinor = 1_000_000;
    public const int DailyLimitMax = 1_000;

    public static void MapRecipients(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/recipients").WithTags("Recipients").RequireApiKey(ApiRole.Platform);
        group.MapPut("/{recipientId}", UpsertAsync)
            .Describe("upsertRecipient", "Create or update a recipient",
                "Contact, display name, base price (minor units) and currency, revenue share and daily message limit. "
                + "`currency` is an ISO 4217 code accepted in any case (`eur`, `EUR`) and stored upper case. Unset optional fields keep their defaults.")
            .JsonBody(new RecipientBody("dr.lee@example.com", "Dr. Lee", 2500, "EUR", 7500, 20))
            .Produces<RecipientResponse>()
            .Problems(StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/{recipientId}", GetAsync)
            .Describe("getRecipient", "Read a recipient", "Its profile and Stripe Connect status (account id, whether payouts are enabled).")
            .Produces<RecipientResponse>()
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        group.MapPost("/{recipientId}/onboarding-link", OnboardingLinkAsync)
            .Describe("createOnboardingLink", "Create a Stripe payout onboarding link",
                "Creates the recipient's Stripe Express account if there is none and returns a single-use onboarding URL. Both URLs are optional.")
            .JsonBody(new OnboardingLinkBody("https://platform.example.com/payouts/refresh", "https://platform.example.com/payouts/done"), optional: true)
            .Produces<OnboardingLinkResponse>()
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>The active ISO 4217 currency codes (not funds, metals or test codes); Stripe refuses anything else.</summary>
    private static readonly HashSet<string> IsoCurrencies = new(StringComparer.Ordinal)
    {
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL",
        "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
        "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
        "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
        "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
        "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX",
        "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    };

    /// <summary>An active ISO 4217 code such as EUR: three letters, upper case, that names a real currency.</summary>
    public static bool IsIsoCurrency(string? code) => code is { Length: 3 } && IsoCurrencies.Contains(code) && Currency.TryParse(code, out _);

    public static bool IsValidId(string? id) => id is { Length: >= 1 and <= 64 } && IdPattern().IsMatch(id);

    public static bool IsValidEmail(string? email) =>
        email is { Length: >= 3 and <= 254 } && MailAddress.TryCreate(email, out var parsed) && parsed.Address == email && !email.Any(char.IsControl);

    private static async Task<IResult> UpsertAsync(string recipientId, HttpRequest request, IGrainFactory grains)
    {
        var errors = new Dictionary<string, string[]>();
        if (!IsValidId(recipientId))
        {
            errors["recipientId"] = ["1 to 64 letters, digits, '-' or '_'."];
        }
        // Read by hand like every other JSON body: 415 for another media type, 413 over 256 KiB, 400 naming a mistyped field.
        var (body, error) = await JsonBody.ReadAsync<RecipientBody>(request);
        if (body is null)
        {
            return error!;
        }
        if (!IsValidEmail(body.Email))
        {
            errors["email"] = ["A valid email address is required."];
        }
        if (string.IsNullOrWhiteSpace(body.DisplayName) || body.DisplayName.Length > 100 || body.DisplayName.Any(char.IsControl))
        {
            errors["displayName"] = ["1 to 100 printable characters."];
        }
        if (body.BasePriceMinor is not (> 0 and <= BasePriceMaxMinor))
        {
            errors["basePriceMinor"] = [$"An integer number of minor units, 1 to {BasePriceMaxMinor}."];
        }
        // Stripe's own clients write currencies in lower case: any case is accepted and the code is stored upper case.
        body = body with { Currency = body.Currency?.ToUpperInvariant() };
        if (!IsIsoCurrency(body.Currency))
        {
            errors["currency"] = ["A three-letter ISO 4217 code such as EUR."];
        }
        if (body.RevenueShareBps is < 0 or > Split.BasisPointsMax)
        {
            errors["revenueShareBps"] = ["0 to 10000 basis points (7500 = 75 %)."];
        }
        if (body.DailyLimit is < 1 or > DailyLimitMax)
        {
            errors["dailyLimit"] = [$"1 to {DailyLimitMax} messages per UTC day."];
        }
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }
        var view = await grains.GetGrain<IRecipientGrain>(recipientId).UpsertAsync(
            new RecipientProfile(body.Email!, body.DisplayName!.Trim(), body.BasePriceMinor!.Value, body.Currency!, body.RevenueShareBps, body.DailyLimit));
        return TypedResults.Ok(ToResponse(view));
    }

    private static async Task<IResult> GetAsync(string recipientId, IGrainFactory grains)
    {
        if (!IsValidId(recipientId))
        {
            return Problems.NotFound("No recipient has this id.");
        }
        var view = await grains.GetGrain<IRecipientGrain>(recipientId).GetAsync();
        return view is null ? Problems.NotFound("No recipient has this id.") : TypedResults.Ok(ToResponse(view));
    }

    private static async Task<IResult> OnboardingLinkAsync(string recipientId, OnboardingLinkBody? body, IGrainFactory grains, HttpContext http)
    {
        if (!IsValidId(recipientId) || await grains.GetGrain<IRecipientGrain>(recipientId).GetAsync() is null)
        {
            return Problems.NotFound("No recipient has this id.");
        }
        var self = $"{http.Request.Scheme}://{http.Request.Host}";
        var refresh = body?.RefreshUrl ?? $"{self}/onboarding/refresh";
        var back = body?.ReturnUrl ?? $"{self}/onboarding/done";
        if (!Uri.TryCreate(refresh, UriKind.Absolute, out _) || !Uri.TryCreate(back, UriKind.Absolute, out _))
        {
            return Problems.BadRequest("refreshUrl and returnUrl must be absolute URLs.");
        }
        var link = await grains.GetGrain<IRecipientGrain>(recipientId).CreateOnboardingLinkAsync(refresh, back);
        return TypedResults.Ok(new OnboardingLinkResponse(link.AccountId, link.Url));
    }

    private static RecipientResponse ToResponse(RecipientView v) =>
        new(v.Id, v.Email, v.DisplayName, v.BasePriceMinor, v.Currency, v.RevenueShareBps, v.DailyLimit, v.StripeAccountId, v.PayoutsEnabled);

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex IdPattern();
}
