using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Net.Mail;
using System.Text.RegularExpressions;
using Escrow.Grains.Payments;

namespace Escrow.Api.Endpoints;

/// <summary>The upsert's body; the attributes describe it in the OpenAPI document, the handler enforces it with its own messages.</summary>
public sealed record RecipientBody(
    [property: Required, StringLength(254, MinimumLength = 3), EmailAddress, Description("Where the recipient's messages are e-mailed.")] string? Email,
    [property: Required, StringLength(100, MinimumLength = 1), Description("The name senders see.")] string? DisplayName,
    [property: Required, Range(1, RecipientEndpoints.BasePriceMaxMinor), Description("The price of the longest window, in minor units of the currency (2500 = EUR 25.00); the cheapest window must reach Stripe's minimum charge (EUR 0.50, GBP 0.30, JPY 50, ...).")] long? BasePriceMinor,
    [property: Required, StringLength(3, MinimumLength = 3), RegularExpression("^[A-Za-z]{3}$"), Description("An ISO 4217 code, accepted in any case (eur, EUR) and stored upper case.")] string? Currency,
    [property: Range(0, 10_000), Description("The recipient's share in basis points (7500 = 75 %, the default).")] int? RevenueShareBps = null,
    [property: Range(1, RecipientEndpoints.DailyLimitMax), Description("Messages accepted per UTC day.")] int? DailyLimit = null,
    [property: StringLength(2, MinimumLength = 2), RegularExpression("^[A-Z]{2}$"), Description("ISO 3166 alpha-2 country of the recipient's Stripe account (default Stripe:ConnectCountry); fixed once the account exists.")] string? Country = null);

/// <param name="PayoutsEnabled">Whether the recipient can receive transfers (the account's transfers capability is active).</param>
public sealed record RecipientResponse(string Id, string Email, string DisplayName, long BasePriceMinor, string Currency, int RevenueShareBps, int DailyLimit, string? StripeAccountId, bool PayoutsEnabled, string Country);

public sealed record OnboardingLinkBody(string? RefreshUrl = null, string? ReturnUrl = null);

/// <param name="Url">A fresh Stripe account link: single-use, valid for minutes.</param>
/// <param name="PublicUrl">The service's own long-lived link (what e-mails carry): it mints a fresh account link when opened.</param>
public sealed record OnboardingLinkResponse(string AccountId, string Url, string PublicUrl);

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
                + "`currency` is an ISO 4217 code accepted in any case (`eur`, `EUR`) and stored upper case; it must be one of the enabled currencies (`Escrow:Currencies`, default EUR). Unset optional fields keep their defaults.")
            .JsonBody(new RecipientBody("dr.lee@example.com", "Dr. Lee", 2500, "EUR", 7500, 20))
            .Produces<RecipientResponse>()
            .Problems(StatusCodes.Status503ServiceUnavailable);
        group.MapDelete("/{recipientId}", DeleteAsync)
            .Describe("deleteRecipient", "Delete a recipient and erase their data",
                "No new escrows; the recipient's address and name, and the subjects, messages and sender addresses of their escrows, become `erased` "
                + "everywhere they are stored (ids and amounts are kept). 409 `escrow_open` (nothing changed) while one of their escrows is not finished. "
                + "Audited. A later PUT with the same id makes a new recipient.")
            .Produces<ErasureResponse>()
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/{recipientId}", GetAsync)
            .Describe("getRecipient", "Read a recipient", "Its profile and Stripe Connect status (account id, whether payouts are enabled).")
            .Produces<RecipientResponse>()
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        group.MapPost("/{recipientId}/onboarding-link", OnboardingLinkAsync)
            .Describe("createOnboardingLink", "Create a Stripe payout onboarding link",
                "Creates the recipient's Stripe Express account if there is none and returns a fresh single-use Stripe onboarding URL (`url`, valid for minutes) "
                + "and the service's long-lived `/onboarding` link (`publicUrl`, what e-mails carry). Both URLs of the body are optional: by default Stripe returns to the `/onboarding` routes.")
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

    /// <summary>ISO 3166-1 alpha-2 country codes.</summary>
    private static readonly HashSet<string> IsoCountries = new(
        ("AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK " +
         "CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS " +
         "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV " +
         "LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM " +
         "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR " +
         "TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW").Split(' '), StringComparer.Ordinal);

    public static bool IsIsoCountry(string? code) => code is { Length: 2 } && IsoCountries.Contains(code);

    public static bool IsValidId(string? id) => id is { Length: >= 1 and <= 64 } && IdPattern().IsMatch(id);

    public static bool IsValidEmail(string? email) =>
        email is { Length: >= 3 and <= 254 } && MailAddress.TryCreate(email, out var parsed) && parsed.Address == email && !email.Any(char.IsControl);

    private static async Task<IResult> UpsertAsync(string recipientId, HttpRequest request, IGrainFactory grains, IOptions<EscrowOptions> escrow, IOptions<StripeOptions> stripe)
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
        else if (!escrow.Value.IsEnabled(body.Currency!))
        {
            errors["currency"] = [$"{body.Currency} is not enabled here; Escrow:Currencies enables {string.Join(", ", escrow.Value.EnabledCurrencies)}."];
        }
        else if (body.BasePriceMinor is > 0 and <= BasePriceMaxMinor && StripeMinimumCharge.MinimumMinor(body.Currency!) is { } minimum
            && StripeMinimumCharge.CheapestWindowAmount(body.BasePriceMinor.Value, escrow.Value.EffectiveWindows) is var cheapest && cheapest < minimum)
        {
            // Stripe refuses a PaymentIntent below its minimum charge (amount_too_small): no window may price below it.
            errors["basePriceMinor"] = [$"The cheapest response window would charge {cheapest} minor units of {body.Currency}, below Stripe's minimum charge of {minimum}."];
        }
        if (body.Country is not null && !IsIsoCountry(body.Country))
        {
            errors["country"] = ["An ISO 3166 alpha-2 country code in upper case, such as FR (default: Stripe:ConnectCountry)."];
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
            new RecipientProfile(body.Email!, body.DisplayName!.Trim(), body.BasePriceMinor!.Value, body.Currency!, body.RevenueShareBps, body.DailyLimit, body.Country,
                request.HttpContext.Caller().KeyId));
        return TypedResults.Ok(ToResponse(view, stripe.Value));
    }

    private static async Task<IResult> DeleteAsync(string recipientId, HttpContext http, Admin.AdminOperations ops)
    {
        if (!IsValidId(recipientId))
        {
            return Problems.NotFound("No recipient has this id.");
        }
        var outcome = await ops.DeleteRecipientAsync(recipientId, http.Caller().KeyId);
        return outcome is null ? Problems.NotFound("No recipient has this id.") : AdminEndpoints.ToResult(outcome);
    }

    private static async Task<IResult> GetAsync(string recipientId, IGrainFactory grains, IOptions<StripeOptions> stripe)
    {
        if (!IsValidId(recipientId))
        {
            return Problems.NotFound("No recipient has this id.");
        }
        var view = await grains.GetGrain<IRecipientGrain>(recipientId).GetAsync();
        return view is null ? Problems.NotFound("No recipient has this id.") : TypedResults.Ok(ToResponse(view, stripe.Value));
    }

    private static async Task<IResult> OnboardingLinkAsync(string recipientId, OnboardingLinkBody? body, IGrainFactory grains, OnboardingLinks links, HttpContext http)
    {
        if (!IsValidId(recipientId) || await grains.GetGrain<IRecipientGrain>(recipientId).GetAsync() is null)
        {
            return Problems.NotFound("No recipient has this id.");
        }
        // By default Stripe sends the recipient back to the service's own public routes (Api:PublicBaseUrl, never the Host header).
        var refresh = body?.RefreshUrl ?? links.Refresh(recipientId);
        var back = body?.ReturnUrl ?? links.Done(recipientId);
        if (!Uri.TryCreate(refresh, UriKind.Absolute, out _) || !Uri.TryCreate(back, UriKind.Absolute, out _))
        {
            return Problems.BadRequest("refreshUrl and returnUrl must be absolute URLs.");
        }
        var link = await grains.GetGrain<IRecipientGrain>(recipientId).CreateOnboardingLinkAsync(refresh, back, http.Caller().KeyId);
        return TypedResults.Ok(new OnboardingLinkResponse(link.AccountId, link.Url, links.Start(recipientId)));
    }

    private static RecipientResponse ToResponse(RecipientView v, StripeOptions stripe) =>
        new(v.Id, v.Email, v.DisplayName, v.BasePriceMinor, v.Currency, v.RevenueShareBps, v.DailyLimit, v.StripeAccountId, v.PayoutsEnabled, v.Country ?? stripe.ConnectCountry);

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex IdPattern();
}
