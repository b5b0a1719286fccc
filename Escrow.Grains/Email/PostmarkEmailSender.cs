using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;

namespace Escrow.Grains.Email;

/// <summary>Postmark's REST API (POST /email) through a typed HttpClient; the Postmark NuGet package is not used.</summary>
public sealed class PostmarkEmailSender(HttpClient http, IOptions<PostmarkOptions> options, IExternalEndpoints endpoints) : IEmailSender
{
    /// <summary>Postmark's JSON names are PascalCase, as the members are declared.</summary>
    private static readonly System.Text.Json.JsonSerializerOptions PascalCase = new();

    public async Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(endpoints.PostmarkApiBase.TrimEnd('/') + "/"), "email"))
        {
            Content = JsonContent.Create(new PostmarkEmail(
                o.FromAddress, message.To, message.Subject, message.TextBody, message.HtmlBody, message.Tag, message.ReplyTo,
                "outbound", message.Metadata), options: PascalCase),
        };
        request.Headers.Add("X-Postmark-Server-Token", o.ServerToken);
        request.Headers.Accept.ParseAdd("application/json");
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new EmailSendException(transient: true, "Postmark could not be reached.", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new EmailSendException(transient: true, "Postmark did not answer in time.", e);
        }
        using (response)
        {
            PostmarkResponse? body = null;
            try
            {
                body = await response.Content.ReadFromJsonAsync<PostmarkResponse>(cancellationToken);
            }
            catch (System.Text.Json.JsonException)
            {
                // A non-JSON body (a proxy's error page) is reported by status below.
            }
            if (response.IsSuccessStatusCode && body is { ErrorCode: 0, MessageId: { Length: > 0 } id })
            {
                return id;
            }
            var transient = (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests;
            throw new EmailSendException(transient, $"Postmark answered {(int)response.StatusCode} (error code {body?.ErrorCode}): {body?.Message}")
            {
                ErrorCode = transient ? null : body?.ErrorCode,
            };
        }
    }

    public async Task<string?> FindSentAsync(string metadataKey, string metadataValue, CancellationToken cancellationToken = default)
    {
        var query = $"messages/outbound?count=1&offset=0&metadata_{Uri.EscapeDataString(metadataKey)}={Uri.EscapeDataString(metadataValue)}";
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(endpoints.PostmarkApiBase.TrimEnd('/') + "/"), query));
        request.Headers.Add("X-Postmark-Server-Token", options.Value.ServerToken);
        request.Headers.Accept.ParseAdd("application/json");
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new EmailSendException(transient: true, $"Postmark's message search answered {(int)response.StatusCode}.");
            }
            var body = await response.Content.ReadFromJsonAsync<PostmarkSearch>(cancellationToken);
            return body?.Messages?.FirstOrDefault(m => m.MessageId is { Length: > 0 })?.MessageId;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new EmailSendException(transient: true, "Postmark's message search could not be read.", e);
        }
    }

    private sealed record PostmarkSearch(
        [property: JsonPropertyName("TotalCount")] int TotalCount,
        [property: JsonPropertyName("Messages")] IReadOnlyList<PostmarkFound>? Messages);

    private sealed record PostmarkFound([property: JsonPropertyName("MessageID")] string? MessageId);

    private sealed record PostmarkEmail(
        string From,
        string To,
        string Subject,
        string TextBody,
        string HtmlBody,
        string Tag,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ReplyTo,
        string MessageStream,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, string>? Metadata);

    private sealed record PostmarkResponse(
        [property: JsonPropertyName("ErrorCode")] int ErrorCode,
        [property: JsonPropertyName("Message")] string? Message,
        [property: JsonPropertyName("MessageID")] string? MessageId);
}
