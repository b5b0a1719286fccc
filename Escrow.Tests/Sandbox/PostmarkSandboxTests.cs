namespace Escrow.Tests.Sandbox;

public sealed class PostmarkSandboxTests
{
    private static HttpRequestMessage Send(object body, string? token = SandboxTestHost.PostmarkToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/_sandbox/postmark/email")
        {
            Content = JsonContent.Create(body),
        };
        request.Headers.Accept.ParseAdd("application/json");
        if (token is not null)
        {
            request.Headers.Add("X-Postmark-Server-Token", token);
        }

        return request;
    }

    private static readonly object ValidEmail = new
    {
        From = "escrow@platform.example",
        To = "expert@example.com",
        Subject = "You have a paid message",
        TextBody = "Reply within 24 hours.",
        HtmlBody = "<p>Reply within 24 hours.</p>",
        ReplyTo = "reply+tok123@inbound.platform.example",
        Tag = "escrow-held",
        MessageStream = "outbound",
        Headers = new[] { new { Name = "X-Escrow-Id", Value = "e-1" } },
        Metadata = new Dictionary<string, string> { ["escrow_id"] = "e-1" },
    };

    private static HttpRequestMessage Search(string query, string? token = SandboxTestHost.PostmarkToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/_sandbox/postmark/messages/outbound" + query);
        request.Headers.Accept.ParseAdd("application/json");
        if (token is not null)
        {
            request.Headers.Add("X-Postmark-Server-Token", token);
        }
        return request;
    }

    [Fact]
    public async Task The_outbound_search_finds_a_sent_message_by_metadata_and_refuses_what_postmark_refuses()
    {
        await using var host = await SandboxTestHost.StartAsync();
        using var sent = await host.Http.SendAsync(Send(ValidEmail));
        var messageId = (await sent.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("MessageID").GetString();

        using var found = await host.Http.SendAsync(Search("?count=1&offset=0&metadata_escrow_id=e-1"));
        using var none = await host.Http.SendAsync(Search("?count=1&offset=0&metadata_escrow_id=e-2"));
        using var noCount = await host.Http.SendAsync(Search("?offset=0&metadata_escrow_id=e-1"));
        using var tooMany = await host.Http.SendAsync(Search("?count=501&offset=0"));
        using var pastTheEnd = await host.Http.SendAsync(Search("?count=500&offset=9600"));
        using var noToken = await host.Http.SendAsync(Search("?count=1&offset=0", null));

        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        var body = await found.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(1, body.GetProperty("TotalCount").GetInt32());
        Assert.Equal(messageId, Assert.Single(body.GetProperty("Messages").EnumerateArray().ToList()).GetProperty("MessageID").GetString());
        Assert.Equal(0, (await none.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("TotalCount").GetInt32());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noCount.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooMany.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, pastTheEnd.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
    }

    [Fact]
    public async Task Sending_with_a_wrong_or_missing_server_token_is_401_error_code_10()
    {
        await using var host = await SandboxTestHost.StartAsync();

        using var wrong = await host.Http.SendAsync(Send(ValidEmail, "wrong-token"));
        using var missing = await host.Http.SendAsync(Send(ValidEmail, null));

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        using var body = JsonDocument.Parse(await wrong.Content.ReadAsStringAsync());
        Assert.Equal(10, body.RootElement.GetProperty("ErrorCode").GetInt32());
        Assert.Empty(host.Postmark.Outbox);
    }

    [Fact]
    public async Task An_email_without_from_to_or_any_body_is_422_error_code_300()
    {
        await using var host = await SandboxTestHost.StartAsync();

        using var noFrom = await host.Http.SendAsync(Send(new { To = "a@example.com", TextBody = "x" }));
        using var noTo = await host.Http.SendAsync(Send(new { From = "a@example.com", TextBody = "x" }));
        using var noBody = await host.Http.SendAsync(Send(new { From = "a@example.com", To = "b@example.com" }));

        foreach (var response in new[] { noFrom, noTo, noBody })
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(300, body.RootElement.GetProperty("ErrorCode").GetInt32());
            Assert.StartsWith("Invalid email request", body.RootElement.GetProperty("Message").GetString(),
                StringComparison.Ordinal);
        }

        Assert.Empty(host.Postmark.Outbox);
    }

    [Fact]
    public async Task An_accepted_email_is_answered_like_postmark_and_appears_in_the_outbox()
    {
        await using var host = await SandboxTestHost.StartAsync();

        using var response = await host.Http.SendAsync(Send(ValidEmail));
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var outbox = await host.Http.GetStringAsync("/_sandbox/postmark/outbox");
        using var listed = JsonDocument.Parse(outbox);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, answer.RootElement.GetProperty("ErrorCode").GetInt32());
        Assert.Equal("OK", answer.RootElement.GetProperty("Message").GetString());
        Assert.Equal("expert@example.com", answer.RootElement.GetProperty("To").GetString());
        var messageId = answer.RootElement.GetProperty("MessageID").GetString();
        Assert.True(Guid.TryParse(messageId, out _));
        Assert.True(DateTimeOffset.TryParse(answer.RootElement.GetProperty("SubmittedAt").GetString(),
            System.Globalization.CultureInfo.InvariantCulture, out _));
        var item = Assert.Single(listed.RootElement.EnumerateArray());
        Assert.Equal("expert@example.com", item.GetProperty("to").GetString());
        Assert.Equal("escrow@platform.example", item.GetProperty("from").GetString());
        Assert.Equal("reply+tok123@inbound.platform.example", item.GetProperty("replyTo").GetString());
        Assert.Equal("You have a paid message", item.GetProperty("subject").GetString());
        Assert.Equal("Reply within 24 hours.", item.GetProperty("textBody").GetString());
        Assert.Equal("<p>Reply within 24 hours.</p>", item.GetProperty("htmlBody").GetString());
        Assert.Equal("escrow-held", item.GetProperty("tag").GetString());
        Assert.Equal(messageId, item.GetProperty("messageId").GetString());
        Assert.True(item.TryGetProperty("sentAt", out _));
        var email = Assert.Single(host.Postmark.Outbox);
        Assert.Equal("e-1", email.Headers["X-Escrow-Id"]);
        Assert.Equal("e-1", email.Metadata["escrow_id"]);
    }

    [Fact]
    public async Task Deleting_the_outbox_empties_it()
    {
        await using var host = await SandboxTestHost.StartAsync();
        using var sent = await host.Http.SendAsync(Send(ValidEmail));

        using var deleted = await host.Http.DeleteAsync("/_sandbox/postmark/outbox");

        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Empty(host.Postmark.Outbox);
        Assert.Equal("[]", await host.Http.GetStringAsync("/_sandbox/postmark/outbox"));
    }

    [Fact]
    public async Task A_server_error_fault_fails_the_next_sends_and_then_sending_recovers()
    {
        await using var host = await SandboxTestHost.StartAsync();
        using var fault = await host.Http.PostAsJsonAsync("/_sandbox/postmark/faults", new { kind = "server_error", times = 2 });

        using var first = await host.Http.SendAsync(Send(ValidEmail));
        using var second = await host.Http.SendAsync(Send(ValidEmail));
        using var third = await host.Http.SendAsync(Send(ValidEmail));

        Assert.Equal(HttpStatusCode.OK, fault.StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, first.StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, second.StatusCode);
        using var body = JsonDocument.Parse(await first.Content.ReadAsStringAsync());
        Assert.Equal(500, body.RootElement.GetProperty("ErrorCode").GetInt32());
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Single(host.Postmark.Outbox);
    }
}
