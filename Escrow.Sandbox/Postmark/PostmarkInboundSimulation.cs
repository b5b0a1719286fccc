using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Escrow.Sandbox;

/// <summary>
/// Simulates an e-mail arriving at Postmark's inbound server (<c>POST /_sandbox/postmark/inbound</c>) and delivers it to
/// the service's inbound webhook as Postmark would: the inbound JSON, with the verdicts a receiving server writes at the
/// top of the headers (Received-SPF, Authentication-Results). A mail marked <c>"spoofed": true</c> is one whose
/// From domain did not send it: SPF and DMARC fail and no DKIM signature of that domain passes.
/// </summary>
public static class PostmarkInboundSimulation
{
    public const string InboundPath = "/webhooks/postmark/inbound";
    private const string ReceivingServer = "inbound.postmarkapp.com";
    private const string SenderIp = "192.0.2.25";
    private const string SpoofingIp = "203.0.113.66";

    public sealed record InboundRequest(string? From, string? To, string? Subject, string? Text, bool Spoofed = false);

    /// <summary>The inbound webhook's JSON for the mail, as Postmark posts it.</summary>
    public static JsonObject Build(InboundRequest mail, string messageId)
    {
        var from = mail.From!.Trim();
        var to = mail.To!.Trim();
        var domain = from[(from.LastIndexOf('@') + 1)..].ToLowerInvariant();
        var plus = to.IndexOf('+', StringComparison.Ordinal);
        var at = to.IndexOf('@', StringComparison.Ordinal);
        var mailboxHash = plus >= 0 && at > plus ? to[(plus + 1)..at] : "";
        var (receivedSpf, results) = mail.Spoofed
            ? ($"Fail (domain of {from} does not designate {SpoofingIp} as permitted sender) identity=mailfrom; client-ip={SpoofingIp}; envelope-from={from}; receiver={to}",
               $"{ReceivingServer}; spf=fail (sender IP is {SpoofingIp}) smtp.mailfrom={domain}; dkim=none (message not signed); dmarc=fail (p=REJECT) header.from={domain}")
            : ($"Pass (sender SPF authorized) identity=mailfrom; client-ip={SenderIp}; envelope-from={from}; receiver={to}",
               $"{ReceivingServer}; spf=pass (sender IP is {SenderIp}) smtp.mailfrom={domain}; dkim=pass (2048-bit key) header.d={domain}; dmarc=pass (p=REJECT) header.from={domain}");
        var text = mail.Text ?? "";
        return new JsonObject
        {
            ["FromName"] = "",
            ["MessageStream"] = "inbound",
            ["From"] = from,
            ["FromFull"] = new JsonObject { ["Email"] = from, ["Name"] = "", ["MailboxHash"] = "" },
            ["To"] = to,
            ["ToFull"] = new JsonArray(new JsonObject { ["Email"] = to, ["Name"] = "", ["MailboxHash"] = mailboxHash }),
            ["Cc"] = "",
            ["CcFull"] = new JsonArray(),
            ["OriginalRecipient"] = to,
            ["Subject"] = mail.Subject ?? "Re: your message",
            ["MessageID"] = messageId,
            ["ReplyTo"] = "",
            ["MailboxHash"] = mailboxHash,
            ["Date"] = DateTimeOffset.UtcNow.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            ["TextBody"] = text,
            ["HtmlBody"] = "",
            ["StrippedTextReply"] = text,
            ["Tag"] = "",
            // The receiving server's verdicts come first, above the headers the sender wrote.
            ["Headers"] = new JsonArray(
                Header("Return-Path", $"<{from}>"),
                Header("Received-SPF", receivedSpf),
                Header("Authentication-Results", results),
                Header("X-Spam-Status", "No"),
                Header("X-Spam-Score", "0.1"),
                Header("Message-ID", $"<{messageId}@{domain}>")),
            ["Attachments"] = new JsonArray(),
        };
    }

    private static JsonObject Header(string name, string value) => new() { ["Name"] = name, ["Value"] = value };

    internal static async Task<IResult> DeliverAsync(HttpContext ctx, IOptions<SandboxOptions> options, IHttpClientFactory clients)
    {
        var (mail, invalid) = await SandboxControlJson.ReadAsync<InboundRequest>(ctx).ConfigureAwait(false);
        if (invalid is not null)
        {
            return invalid;
        }
        if (mail is null || string.IsNullOrWhiteSpace(mail.From) || !mail.From.Contains('@', StringComparison.Ordinal) || string.IsNullOrWhiteSpace(mail.To))
        {
            return Results.BadRequest(new { error = "Expected {\"from\":\"alice@example.com\",\"to\":\"reply+TOKEN@...\",\"subject\"?,\"text\",\"spoofed\"?:false}." });
        }
        var url = InboundUrl(ctx.RequestServices, options.Value);
        if (url is null)
        {
            return Results.Problem("No inbound webhook URL: start the server first.", statusCode: 503);
        }
        var payload = Build(mail, Guid.NewGuid().ToString());
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(payload) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Value.PostmarkInboundUsername}:{options.Value.PostmarkInboundPassword}")));
        using var response = await clients.CreateClient(SandboxOptions.WebhookHttpClientName).SendAsync(request, ctx.RequestAborted).ConfigureAwait(false);
        var answer = await response.Content.ReadAsStringAsync(ctx.RequestAborted).ConfigureAwait(false);
        return Results.Json(new { messageId = payload["MessageID"]!.GetValue<string>(), status = (int)response.StatusCode, response = answer }, SandboxControlJson.Options);
    }

    /// <summary>The service's inbound webhook: beside the Stripe webhook URL when one is set, else at this server's address.</summary>
    private static Uri? InboundUrl(IServiceProvider services, SandboxOptions options)
    {
        if (options.WebhookUrl is { } stripe)
        {
            return new Uri(stripe, InboundPath);
        }
        var address = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return address is null ? null : new Uri(new Uri(address.Replace("://+", "://localhost", StringComparison.Ordinal)
            .Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://[::]", "://localhost", StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://localhost", StringComparison.Ordinal)), InboundPath);
    }
}
