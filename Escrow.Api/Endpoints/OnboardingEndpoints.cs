using Escrow.Api.OperatorConsole;
using Escrow.Grains.Payments;

namespace Escrow.Api.Endpoints;

/// <summary>
/// The recipient's payout setup, from the link in an e-mail. Stripe's account links are single-use and expire in
/// minutes, so e-mails carry <c>/onboarding/{recipientId}?t=TOKEN</c> instead: each visit mints a fresh account link
/// whose refresh_url and return_url come back here. Every URL is built from Api:PublicBaseUrl, never the Host header.
/// </summary>
public static partial class OnboardingEndpoints
{
    /// <summary>Who the audit trail names for a link minted through the recipient's signed /onboarding link.</summary>
    public const string OnboardingLinkCaller = "recipient-onboarding-link";

    public static void MapOnboarding(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/onboarding/{recipientId}").WithTags("Onboarding").ExcludeFromDescription();
        group.MapGet("/", StartAsync);
        group.MapGet("/refresh", StartAsync);
        group.MapGet("/done", DoneAsync);
    }

    /// <summary>A fresh account link, and a 303 to it.</summary>
    private static async Task<IResult> StartAsync(string recipientId, string? t, OnboardingLinks links, IGrainFactory grains, ILoggerFactory loggers)
    {
        if (!RecipientEndpoints.IsValidId(recipientId) || !links.IsValid(recipientId, t))
        {
            return Page(StatusCodes.Status403Forbidden, "Link not valid", "This link is not valid or has expired. Ask for a new payout setup e-mail.");
        }
        var recipient = grains.GetGrain<IRecipientGrain>(recipientId);
        if (await recipient.GetAsync() is null)
        {
            return Page(StatusCodes.Status404NotFound, "Unknown recipient", "There is no payout setup to complete here.");
        }
        try
        {
            // The recipient, by the signed link of their e-mail: no API key, so the audit row names the link.
            var link = await recipient.CreateOnboardingLinkAsync(links.Refresh(recipientId), links.Done(recipientId), OnboardingLinkCaller);
            return new SeeOther(link.Url);
        }
        catch (PaymentGatewayException e)
        {
            LogStripeFailed(loggers.CreateLogger("Escrow.Onboarding"), recipientId, e.Code);
            return Page(StatusCodes.Status503ServiceUnavailable, "Try again shortly", "Stripe could not be reached. Reload this page in a minute.");
        }
    }

    /// <summary>Stripe's return_url: reads the account again and says whether payouts are ready.</summary>
    private static async Task<IResult> DoneAsync(string recipientId, string? t, OnboardingLinks links, IGrainFactory grains, ILoggerFactory loggers)
    {
        if (!RecipientEndpoints.IsValidId(recipientId) || !links.IsValid(recipientId, t))
        {
            return Page(StatusCodes.Status403Forbidden, "Link not valid", "This link is not valid or has expired. Ask for a new payout setup e-mail.");
        }
        RecipientView? view;
        try
        {
            view = await grains.GetGrain<IRecipientGrain>(recipientId).RefreshAccountAsync();
        }
        catch (PaymentGatewayException e)
        {
            LogStripeFailed(loggers.CreateLogger("Escrow.Onboarding"), recipientId, e.Code);
            return Page(StatusCodes.Status503ServiceUnavailable, "Try again shortly", "Stripe could not be reached. Reload this page in a minute.");
        }
        if (view is null)
        {
            return Page(StatusCodes.Status404NotFound, "Unknown recipient", "There is no payout setup to complete here.");
        }
        return view.PayoutsEnabled
            ? Page(StatusCodes.Status200OK, "Payouts ready", "Your payout setup is complete: your earnings will be transferred to you.")
            : SenderPage.PublicPage(StatusCodes.Status200OK, "Payouts not ready yet",
                Html.Of($"<p>Stripe still needs some details. <a href=\"{links.Start(recipientId)}\">Continue the payout setup</a>.</p>"));
    }

    private static IResult Page(int status, string title, string detail) => SenderPage.PublicPage(status, title, Html.Of($"<p>{detail}</p>"));

    /// <summary>303 See Other: the browser follows with a GET to Stripe's page.</summary>
    private sealed class SeeOther(string location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status303SeeOther;
            httpContext.Response.Headers.Location = location;
            return Task.CompletedTask;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Onboarding of recipient {RecipientId}: Stripe failed ({Code})")]
    private static partial void LogStripeFailed(ILogger logger, string recipientId, string code);
}
